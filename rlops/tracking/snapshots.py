"""What a driver knows of a sweep and of a trial, as trackers read it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rlops.api.runinfo import ProgressRecord, RunResult

FINISHED = ("Succeeded", "Failed", "Stopped")


class TrackingError(RuntimeError):
    """A tracker that cannot be set up (the message names the setting)."""


@dataclass(frozen=True)
class SweepSnapshot:
    name: str
    namespace: str
    phase: str
    metric: str
    best_name: str | None = None
    best_objective: float | None = None
    best_parameters: Mapping[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class TrialSnapshot:
    """One trial (or a standalone experiment: `sweep` None) and its progress so far."""

    name: str
    namespace: str
    phase: str
    sweep: str | None = None
    configuration: str | None = None  # The configuration's first-seed trial name.
    seed: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    records: Sequence[ProgressRecord] = ()
    result: RunResult | None = None
    run_dir: str | None = None

    @property
    def key(self) -> str:
        return (
            f"{self.namespace}/{self.sweep}/{self.name}"
            if self.sweep
            else f"{self.namespace}/{self.name}"
        )

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED
