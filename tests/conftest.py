"""Shared fixtures: paths of the repository and fluent manifest builders."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "manifests" / "examples"


@pytest.fixture
def root() -> Path:
    return ROOT
