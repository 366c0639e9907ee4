"""What the drivers see of a backend.

- `Executor`: the runner's protocol (`rlops run`): start launches (several at once where
  the backend can: `StartsMany`), poll which ended, stop (checkpoint first) or kill them.
  `backends.local.LocalExecutor` and `backends.slurm.executor.SlurmExecutor` implement it.
- `ExperimentBackend`: the protocol the operator and the SLURM bridge drive: submit an
  attempt (one, or several together), observe experiments' work in one batched look as
  the lifecycle's `Observation`s, end work with a checkpoint (a stop, a pause, or for a
  newer attempt) and cancel it. `backends.kuberay.KubeRayBackend` and
  `backends.slurm.SlurmExperiments` implement it; a refusal that a retry would get again
  is `Refused`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from rlops.api import Backend, Phase, ResourcesSpec
from rlops.api.experiment import BackendRef, RLExperiment
from rlops.api.runinfo import ExitCode
from rlops.lifecycle.machine import EndKind
from rlops.lifecycle.observation import Observation

__all__ = [
    "EndKind", "Executor", "ExperimentBackend", "Handle", "LaunchRequest", "Observation",
    "Refused", "StartsMany", "Submission", "exit_observation", "start_all",
    "submitted_or_refused", "work_key",
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


def exit_observation(code: int) -> Observation:
    """A run that ended with the runtime's exit status `code` (the runtime's contract: 0
    succeeded, 75 ended at a checkpoint and resumes, anything else failed)."""
    if code == ExitCode.SUCCEEDED:
        return Observation(Phase.SUCCEEDED, "exit 0", terminal=True, exit_code=code)
    if code == ExitCode.REQUEUE:
        return Observation(Phase.PAUSED, "ended at a checkpoint", terminal=True, exit_code=code)
    return Observation(Phase.FAILED, f"exit {code}", terminal=True, exit_code=code)


class Executor(Protocol):
    backend: Backend

    def check(self, name: str, resources: ResourcesSpec) -> None:
        """Raise ValueError when such a trial could never run here."""
        ...

    def start(self, request: LaunchRequest) -> Handle | None:
        """Start it, or return None when there is no room now."""
        ...

    def poll(self, handles: Sequence[Handle]) -> dict[str, Observation]:
        """How the work of each handle that ended ended, by trial name (one batched look),
        as the lifecycle's observation of an ended run: Succeeded, Paused (it ended at a
        checkpoint: a stop, a pause, its pause point, a requeue) or Failed."""
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


class Refused(Exception):
    """The backend refuses the submission for good: a retry would be refused again (the
    API server's 400/403/422, a batch script that cannot be written, sbatch's refusal)."""


@dataclass(frozen=True)
class Submission:
    """Submit `attempt` of `experiment`; `previous`: references of its ended work, never
    adopted; `resumed`: the attempt continues after a pause (its paused work is ended)."""

    experiment: RLExperiment
    attempt: int = 1
    previous: tuple[str, ...] = ()
    resumed: bool = False


def work_key(experiment: RLExperiment) -> str:
    """The key of an experiment in `ExperimentBackend.observe`'s answer."""
    return f"{experiment.metadata.namespace}/{experiment.metadata.name}"


class ExperimentBackend(Protocol):
    """Run experiments somewhere: the one protocol the operator and the bridge drive.
    Every method is idempotent."""

    def submit(self, submission: Submission) -> BackendRef:
        """Start the submission's attempt of its experiment; submitting twice starts it
        once. Raises `Refused` when the backend refuses it for good."""
        ...

    def submit_many(self, submissions: Sequence[Submission]) -> list[BackendRef | Refused]:
        """Submit several in one go where the backend can (SLURM packs `trialsPerJob`
        first attempts into shared jobs): each submission's reference, in order, or the
        `Refused` that refused it."""
        ...

    def observe(
        self, work: Sequence[tuple[RLExperiment, BackendRef | None]]
    ) -> dict[str, Observation | None]:
        """What became of each experiment's work (its status's reference), in one batched
        look, by `work_key`: None when it holds no work; an experiment missing from the
        answer is not known yet (look again later)."""
        ...

    def end(self, experiment: RLExperiment, ref: BackendRef | None, kind: EndKind) -> list[str]:
        """End the work with a checkpoint first: a stop or a pause ends all of the
        experiment's unfinished work, a replacement (`replace`) the referenced work.
        Returns the references ended."""
        ...

    def cancel(self, experiment: RLExperiment | None, ref: BackendRef | None) -> list[str]:
        """End the referenced work now, without a checkpoint, and release its resources
        (with the experiment, any other unfinished work of it too); no work is fine."""
        ...


def submitted_or_refused(
    backend: ExperimentBackend, submission: Submission
) -> BackendRef | Refused:
    """`backend.submit(submission)`, with a refusal as the answer instead of raised (for
    `submit_many`, where one refused submission must not stop the others)."""
    try:
        return backend.submit(submission)
    except Refused as exc:
        return exc
