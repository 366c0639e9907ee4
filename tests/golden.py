"""Golden files: text the code renders, kept in the repository and compared byte for byte.

The `golden` fixture (tests/conftest.py) compares; `pytest --update-golden` (or
`RLOPS_REGEN_GOLDEN=1`) rewrites the files with what the code renders now, on purpose:
review the diff before committing it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

OPTION = "--update-golden"
VARIABLE = "RLOPS_REGEN_GOLDEN"


def add_option(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        action="store_true",
        help=f"rewrite the golden files with what the code renders now ({VARIABLE}=1 too)",
    )


@dataclass(frozen=True)
class Golden:
    """Compares rendered text with its golden file, or rewrites the file when updating."""

    update: bool

    def check(self, path: Path, text: str) -> None:
        if self.update:
            path.write_text(text)
        assert path.exists(), f"{path} is missing; `pytest {OPTION}` writes it"
        assert text == path.read_text(), f"{path} differs; `pytest {OPTION}` rewrites it"


def golden_of(config: pytest.Config) -> Golden:
    return Golden(bool(config.getoption(OPTION) or os.environ.get(VARIABLE)))
