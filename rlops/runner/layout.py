"""The local run directory: where `rlops run` keeps a sweep or an experiment.

    <root>/<sweep>/                  root defaults to ./rlops-runs
      sweep.yaml                     the effective manifest (after --set overrides)
      trials/<trial>/                one run directory per trial (see rlops.api.runinfo)
        spec.yaml                    the trial's RLExperiment
        trial.json                   the runner's record: parameters, seed, launches, exits
        attempts/<n>.log             stdout+stderr of launch n
        progress.jsonl result.json checkpoints/ tensorboard/   (written by the runtime)
      leaderboard.csv  results.json  report/  best -> trials/<best trial>

    <root>/<experiment>/             a single RLExperiment: the run directory itself
      spec.yaml trial.json attempts/ progress.jsonl result.json checkpoints/ tensorboard/

Everything the runner knows is read back from these files, so a second `rlops run`
continues where the first stopped.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from rlops.api.base import Model
from rlops.api.runinfo import SPEC_FILE
from rlops.api.sweep import Exploit

SWEEP_MANIFEST = "sweep.yaml"
TRIAL_RECORD = "trial.json"
LOCK_FILE = ".lock"


class Launch(Model):
    """One process (or job) the runner started for a trial."""

    attempt: int = Field(description="Launch number, 1-based; also the log file's number.")
    kind: str = Field(
        description="start, retry (after a failure) or resume (after a requeue or a pause)."
    )
    started_at: float = Field(description="Unix time it was started.")
    ref: str = Field(default="", description="Process id or backend job id.")
    ended_at: float | None = Field(default=None, description="Unix time it ended.")
    exit_code: int | None = Field(default=None, description="Its exit status, when seen.")
    outcome: str | None = Field(
        default=None,
        description="How it ended, as its backend observed it: Succeeded, Paused (at a "
        "checkpoint) or Failed.",
    )
    interrupted: bool = Field(
        default=False, description="Stopped by Ctrl-C: however it ended, it resumes next run."
    )


class TrialRecord(Model):
    """The runner's own record of a trial, next to the runtime's files."""

    name: str
    index: int = 0
    seed_index: int = 0
    seed: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    backend: str = "local"
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    launches: list[Launch] = Field(default_factory=list)
    retry_pending: bool = False
    stop_requested: bool = False
    pause_requested: bool = Field(
        default=False,
        description="Asked to checkpoint and end as Paused, and not resumed since.",
    )
    promotions: int = Field(default=0, description="Resumes granted after pauses.")
    exploits: list[Exploit] = Field(
        default_factory=list,
        description="pbt: exploits, oldest first; `parameters` are the latest one's.",
    )
    initial_parameters: dict[str, Any] | None = Field(
        default=None, description="pbt: the parameters it started with, once it exploited."
    )


@dataclass(frozen=True)
class SweepLayout:
    """Paths of one sweep's run directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / SWEEP_MANIFEST

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    def trial(self, name: str) -> Path:
        return self.trials / name

    @property
    def leaderboard(self) -> Path:
        return self.root / "leaderboard.csv"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    def trial_names(self) -> list[str]:
        if not self.trials.is_dir():
            return []
        return sorted(p.name for p in self.trials.iterdir() if (p / TRIAL_RECORD).exists())


@dataclass(frozen=True)
class ExperimentLayout:
    """Paths of a single experiment's run directory (the runtime's run directory)."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / SPEC_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def report(self) -> Path:
        return self.root / "report"


def write_atomic(path: Path, text: str) -> None:
    """Write so that a reader never sees half a file, even if the runner is killed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def read_record(run_dir: Path) -> TrialRecord | None:
    path = run_dir / TRIAL_RECORD
    if not path.exists():
        return None
    return TrialRecord.model_validate(json.loads(path.read_text()))


def write_record(run_dir: Path, record: TrialRecord) -> None:
    write_atomic(run_dir / TRIAL_RECORD, json.dumps(record.dump(), indent=1) + "\n")


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where two manifests differ, each with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            p = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{p}: removed (was {old[key]!r})")
            elif key not in old:
                out.append(f"{p}: added ({new[key]!r})")
            else:
                out += differences(old[key], new[key], p)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in differences(a, b, f"{path}.{i}")
        ]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]
