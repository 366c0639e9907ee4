"""Helpers for command trainers written in Python: `rlops.report` and friends.

A command trainer needs none of this (docs/command-trainers.md: the contract is environment
variables and files); these few functions spare a Python program the bookkeeping. Standard
library only: importing them starts no Ray and no torch.

    import rlops
    config = rlops.trainer_config()
    for iteration in range(start, 1000):
        ...
        rlops.report({"iteration": iteration, "timesteps": steps, "episode_return_mean": ret},
                     checkpoint=saved_dir)
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def trainer_config() -> dict[str, Any]:
    """The trial's resolved `spec.config` (RLOPS_CONFIG); empty outside rlops."""
    path = os.environ.get("RLOPS_CONFIG")
    if not path:
        return {}
    data = json.loads(Path(path).read_text())
    return data if isinstance(data, dict) else {}


def resume_checkpoint() -> Path | None:
    """The checkpoint to continue from (RLOPS_RESUME_CHECKPOINT), or None on a fresh start."""
    path = os.environ.get("RLOPS_RESUME_CHECKPOINT")
    return Path(path) if path else None


def checkpoint_dir() -> Path:
    """Where checkpoints go (RLOPS_CHECKPOINT_DIR); ./checkpoints outside rlops."""
    return Path(os.environ.get("RLOPS_CHECKPOINT_DIR") or "checkpoints")


def report(metrics: Mapping[str, Any], checkpoint: str | Path | None = None) -> None:
    """Record one iteration: `metrics` (with `iteration`, `timesteps` and any scalars;
    `episode_return_mean` is the default objective) and, optionally, a checkpoint.

    The checkpoint (a file or directory) is moved into the checkpoint directory first, under
    a dot-name and then renamed, so rlops adopts it complete and at this iteration. Outside
    rlops the line is printed.
    """
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(f"rlops.report: non-finite values for {', '.join(sorted(bad))}")
    line = json.dumps(dict(metrics), allow_nan=False, separators=(",", ":"))
    if checkpoint is not None:
        _hand_over(Path(checkpoint))
    target = os.environ.get("RLOPS_PROGRESS")
    if not target:
        print(line, flush=True)
        return
    with open(target, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _hand_over(source: Path) -> None:
    directory = checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if source.resolve().parent == directory.resolve() and not source.name.startswith("."):
        return  # written in place already
    staging = directory / f".{source.name}.partial"
    if staging.is_dir():
        shutil.rmtree(staging)
    shutil.move(str(source), str(staging))
    os.replace(staging, directory / source.name.lstrip("."))
