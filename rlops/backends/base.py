"""What the drivers see of a backend.

- `Executor`: the runner's protocol (`rlops run`): start launches (several at once where
  the backend can: `StartsMany`), poll which ended, stop (checkpoint first) or kill them.
  `backends.local.LocalExecutor` and `backends.slurm.executor.SlurmExecutor` implement it.
- `ExperimentBackend`: submit, observe, cancel one experiment, reporting what became of it
  as the lifecycle's `Observation`. Declared, not yet what the operator and the bridge
  drive (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from rlops.api import Backend, ResourcesSpec
from rlops.api.experiment import BackendRef, RLExperiment
from rlops.lifecycle.observation import Observation

__all__ = [
    "Executor", "ExperimentBackend", "Handle", "LaunchRequest", "Observation", "StartsMany",
    "start_all",
]  # fmt: skip


@dataclass(frozen=True)
class LaunchRequest:
    """Run the runtime on `spec` in `run_dir` as launch number `attempt`."""

    name: str
    run_dir: Path
    spec: Path
    attempt: int
    resources: ResourcesSpec
    log: Path
    previous: tuple[str, ...] = ()  # Backend references of its earlier, ended launches.
    pause_at: int | None = None  # The iteration at which it checkpoints and ends as paused.
    uses_ray: bool = True  # False: a command trainer, started without the run's Ray cluster.


@dataclass(frozen=True)
class Handle:
    """A started trial: its name, launch number and the backend's reference."""

    name: str
    attempt: int
    ref: str


class Executor(Protocol):
    backend: Backend

    def check(self, name: str, resources: ResourcesSpec) -> None:
        """Raise ValueError when such a trial could never run here."""
        ...

    def start(self, request: LaunchRequest) -> Handle | None:
        """Start it, or return None when there is no room now."""
        ...

    def poll(self, handles: Sequence[Handle]) -> dict[str, int]:
        """Exit codes of the handles whose work ended, by trial name (one batched look)."""
        ...

    def stop(self, handle: Handle) -> None:
        """Ask it to checkpoint and end (it exits 75)."""
        ...

    def kill(self, handle: Handle) -> None:
        """End it now, without a checkpoint."""
        ...

    def close(self) -> None:
        """The run is over: end what is still running and what was started for it."""
        ...


@runtime_checkable
class StartsMany(Protocol):
    """An executor that starts several launches better together (SLURM: one job array)."""

    def start_many(self, requests: Sequence[LaunchRequest]) -> list[Handle | None]:
        """Start them in order; a None (no room) ends the list: later ones did not start."""
        ...


def start_all(executor: Executor, requests: Sequence[LaunchRequest]) -> Iterator[Handle | None]:
    """Start `requests` in order through `executor`: all at once where it can (StartsMany),
    else one by one as the caller consumes the handles, until one finds no room."""
    if isinstance(executor, StartsMany):
        yield from executor.start_many(requests)
        return
    for request in requests:
        handle = executor.start(request)
        yield handle
        if handle is None:
            return


class ExperimentBackend(Protocol):
    """Run experiments somewhere. Every method is idempotent."""

    def submit(self, experiment: RLExperiment, attempt: int) -> BackendRef:
        """Start `attempt` of the experiment; submitting twice starts it once."""
        ...

    def observe(self, experiment: RLExperiment) -> Observation | None:
        """What became of the experiment's work; None when there is none."""
        ...

    def cancel(self, experiment: RLExperiment) -> None:
        """Stop the experiment's work and release its resources; no work is fine."""
        ...
