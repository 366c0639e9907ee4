"""A stand-in for `python -m rlops.runtime` inside SLURM batch scripts (scheduler tests only).

`fake_python(dir)` writes an executable that batch scripts call as their Python: it drops
`-m rlops.runtime` and runs tests/runner/fake_trainer.py with the runtime's arguments, so
array and job tests on the real cluster take seconds instead of training. Real training
through SLURM is covered by the `training`-marked tests.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

FAKE_TRAINER = Path(__file__).resolve().parents[1] / "runner" / "fake_trainer.py"


def fake_python(directory: Path) -> Path:
    path = directory / "fake-python"
    trainer = shlex.quote(str(FAKE_TRAINER))
    path.write_text(f'#!/bin/sh\nshift 2\nexec {shlex.quote(sys.executable)} {trainer} "$@"\n')
    path.chmod(0o755)
    return path
