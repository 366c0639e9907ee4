"""`rlops` and `kubectl-rlops` executables on a PATH, running this checkout's entry points
(the ones pyproject.toml declares) with this interpreter."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def entry_points() -> dict[str, str]:
    scripts: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "scripts"
    ]
    return scripts


def write_shims(directory: Path) -> Path:
    for name, target in entry_points().items():
        module, function = target.split(":")
        script = directory / name
        script.write_text(
            f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -c "import sys, {module} as m; '
            f'sys.exit(m.{function}())" "$@"\n'
        )
        script.chmod(0o755)
    return directory
