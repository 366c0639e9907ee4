"""Checkpoints of one run: written atomically, the N best kept, the latest always kept.

Each checkpoint is RLlib's own directory (`algo.save_to_path`) with one more file,
`rlops_checkpoint.json`, recording the run's counters at that point. A checkpoint
is saved into a hidden partial directory and renamed when complete, so a process
killed mid-save never leaves a checkpoint that a later attempt would resume from.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rlops.api.experiment import CheckpointSpec

METADATA_FILE = "rlops_checkpoint.json"
PREFIX = "checkpoint_"
PARTIAL_PREFIX = ".partial_"


@dataclass(frozen=True)
class CheckpointInfo:
    """One complete checkpoint and the run's counters when it was written."""

    path: Path
    iteration: int
    timesteps: int
    time_seconds: float
    attempt: int
    score: float | None
    episode_return_mean: float | None
    best_episode_return_mean: float | None

    def metadata(self) -> dict[str, Any]:
        data = asdict(self)
        del data["path"]
        return data


def checkpoint_name(iteration: int) -> str:
    return f"{PREFIX}{iteration:06d}"


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # numpy scalars
        except (TypeError, ValueError):
            return None
    number = float(value)
    return number if math.isfinite(number) else None


def score_of(result: dict[str, Any], attribute: str) -> float | None:
    """The value at a `/`-separated path of an RLlib result, when it is a finite number."""
    node: Any = result
    for part in attribute.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return finite(node)


def _rank(info: CheckpointInfo, order: Literal["max", "min"]) -> tuple[bool, float, int]:
    """Sort key, best last: scored before unscored, then by score, then the later one."""
    if info.score is None:
        return (False, 0.0, info.iteration)
    return (True, info.score if order == "max" else -info.score, info.iteration)


def best_of(
    checkpoints: list[CheckpointInfo], order: Literal["max", "min"]
) -> CheckpointInfo | None:
    return max(checkpoints, key=lambda c: _rank(c, order), default=None)


def to_keep(
    checkpoints: list[CheckpointInfo], keep: int | None, order: Literal["max", "min"]
) -> list[CheckpointInfo]:
    """The `keep` best by score, plus the latest (the one a resume starts from)."""
    if keep is None or not checkpoints:
        return list(checkpoints)
    ranked = sorted(checkpoints, key=lambda c: _rank(c, order), reverse=True)[:keep]
    latest = max(checkpoints, key=lambda c: c.iteration)
    kept = {c.iteration for c in [*ranked, latest]}
    return [c for c in checkpoints if c.iteration in kept]


class CheckpointStore:
    """The `checkpoints/` directory of a run."""

    def __init__(self, root: Path, spec: CheckpointSpec) -> None:
        self.root = root
        self.spec = spec

    def scan(self) -> list[CheckpointInfo]:
        """Complete checkpoints, oldest first."""
        found = []
        for path in sorted(self.root.glob(f"{PREFIX}*")):
            meta = path / METADATA_FILE
            if not meta.is_file():
                continue
            try:
                data = json.loads(meta.read_text())
                found.append(CheckpointInfo(path=path, **data))
            except (ValueError, TypeError):
                continue
        return sorted(found, key=lambda c: c.iteration)

    def remove_partials(self) -> None:
        for path in self.root.glob(f"{PARTIAL_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)

    def latest(self) -> CheckpointInfo | None:
        return max(self.scan(), key=lambda c: c.iteration, default=None)

    def best(self) -> CheckpointInfo | None:
        return best_of(self.scan(), self.spec.score_order)

    def save(self, algo: Any, info: CheckpointInfo) -> CheckpointInfo:
        """Write `algo` as the checkpoint described by `info` (its path is set here), then prune."""
        final = self.root / checkpoint_name(info.iteration)
        if (final / METADATA_FILE).is_file():
            # Written at this iteration already (periodic, then at the end).
            return replace(info, path=final)
        return self._write(info, lambda partial: algo.save_to_path(str(partial)))

    def adopt(self, source: Path, info: CheckpointInfo) -> CheckpointInfo:
        """Move a checkpoint a command trainer wrote (a file or a directory) into the store as
        the checkpoint described by `info`, replacing one of the same iteration; then prune."""
        return self._write(info, lambda partial: source.rename(partial / source.name))

    def copy_in(self, source: Path, info: CheckpointInfo) -> CheckpointInfo:
        """Copy another run's checkpoint directory into the store (PBT's exploit) as the
        checkpoint described by `info`, replacing one of the same iteration; then prune."""

        def fill(partial: Path) -> None:
            for entry in source.iterdir():
                if entry.name == METADATA_FILE:
                    continue  # the record is `info`
                if entry.is_dir():
                    shutil.copytree(entry, partial / entry.name)
                else:
                    shutil.copy2(entry, partial / entry.name)

        return self._write(info, fill)

    def _write(self, info: CheckpointInfo, fill: Callable[[Path], object]) -> CheckpointInfo:
        final = self.root / checkpoint_name(info.iteration)
        info = replace(info, path=final)
        partial = self.root / f"{PARTIAL_PREFIX}{final.name}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        partial.mkdir(parents=True)
        fill(partial)
        (partial / METADATA_FILE).write_text(json.dumps(info.metadata(), indent=1) + "\n")
        partial.rename(final)
        self.prune()
        return info

    def prune(self) -> None:
        checkpoints = self.scan()
        kept = {c.path for c in to_keep(checkpoints, self.spec.keep, self.spec.score_order)}
        for c in checkpoints:
            if c.path not in kept:
                shutil.rmtree(c.path, ignore_errors=True)
