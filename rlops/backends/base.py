"""What the drivers see of a backend: `ExperimentBackend`, the one protocol.

The operator, the SLURM bridge and the local runner (`rlops run`) drive it: check that
an experiment could run here, submit an attempt (one, or several together: `submit_many`;
a backend that is full says `NoRoom`), observe experiments' work in one batched look as
the lifecycle's `Observation`s, end work with a checkpoint (a stop, a pause, or for a
newer attempt), cancel it without one, and close what the driver started. Adapters:
`backends.kuberay.KubeRayBackend` (RayJobs), `backends.slurm.SlurmExperiments` (the
bridge's jobs), `backends.slurm.runs.SlurmRunBackend` (the runner's jobs, in its run
directories) and `backends.local.LocalBackend` (processes on this machine). A refusal
that a retry would get again is `Refused`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from rlops.api import Backend, Phase, ResourcesSpec
from rlops.api.experiment import BackendRef, RLExperiment
from rlops.api.runinfo import ExitCode
from rlops.lifecycle.machine import EndKind
from rlops.lifecycle.observation import Observation

T = TypeVar("T")

__all__ = [
    "EndKind", "ExperimentBackend", "NoRoom", "Observation", "Refused", "Submission",
    "exit_observation", "ref_id", "submitted_or_refused", "submitted_until_full", "tracked",
    "work_key",
]  # fmt: skip


def exit_observation(code: int) -> Observation:
    """A run that ended with the runtime's exit status `code` (the runtime's contract: 0
    succeeded, 75 ended at a checkpoint and resumes, anything else failed)."""
    if code == ExitCode.SUCCEEDED:
        return Observation(Phase.SUCCEEDED, "exit 0", terminal=True, exit_code=code)
    if code == ExitCode.REQUEUE:
        return Observation(Phase.PAUSED, "ended at a checkpoint", terminal=True, exit_code=code)
    return Observation(Phase.FAILED, f"exit {code}", terminal=True, exit_code=code)


class Refused(Exception):
    """The backend refuses the submission for good: a retry would be refused again (the
    API server's 400/403/422, a batch script that cannot be written, sbatch's refusal)."""


class NoRoom(Exception):
    """The backend has no room for the submission now (the local machine's CPUs and GPUs
    are taken); submitted again once work ended, it starts."""


@dataclass(frozen=True)
class Submission:
    """Submit `attempt` of `experiment`; `previous`: references of its ended work, never
    adopted; `resumed`: the attempt continues after a pause (its paused work is ended).
    `run_dir`: where it runs, when the driver owns the run directories (the runner; its
    spec.yaml is there), else the backend's own layout; `pause_at`: the iteration at
    which it checkpoints and ends as paused by itself (else its `rlops.dev/pause-at`)."""

    experiment: RLExperiment
    attempt: int = 1
    previous: tuple[str, ...] = ()
    resumed: bool = False
    run_dir: Path | None = None
    pause_at: int | None = None


def work_key(experiment: RLExperiment) -> str:
    """The key of an experiment in `ExperimentBackend.observe`'s answer."""
    return f"{experiment.metadata.namespace}/{experiment.metadata.name}"


def ref_id(ref: BackendRef) -> str:
    """The reference as one string (a run's records, `Submission.previous`): a SLURM job
    id, a process id or a RayJob name."""
    for value in (ref.job_id, ref.pid, ref.name):
        if value is not None:
            return str(value)
    return ""


def tracked(
    work: Mapping[str, T],
    experiment: RLExperiment | None,
    ref: BackendRef | None,
    ref_of: Callable[[T], BackendRef],
) -> T | None:
    """An adapter's record of the work to end: the experiment's (its `work_key`), else the
    one `ref` names; None when it tracks neither."""
    if experiment is not None:
        return work.get(work_key(experiment))
    wanted = ref_id(ref) if ref is not None else None
    return next((item for item in work.values() if ref_id(ref_of(item)) == wanted), None)


class ExperimentBackend(Protocol):
    """Run experiments somewhere: the one protocol the operator, the bridge and the
    runner drive. Every method but `close` is idempotent."""

    @property
    def backend(self) -> Backend:
        """The placement backend its experiments run on."""
        ...

    def check(self, name: str, resources: ResourcesSpec) -> None:
        """Raise ValueError when work of `name` needing `resources` could never run here
        (a backend that schedules for itself accepts all: its own checks refuse later)."""
        ...

    def submit(self, submission: Submission) -> BackendRef:
        """Start the submission's attempt of its experiment; submitting twice starts it
        once. Raises `Refused` when the backend refuses it for good, `NoRoom` when it has
        no room for it now."""
        ...

    def submit_many(self, submissions: Sequence[Submission]) -> list[BackendRef | Refused]:
        """Submit several in one go where the backend can (SLURM packs `trialsPerJob`
        first attempts into shared jobs, or puts equal ones in one job array): each
        submission's reference, in order, or the `Refused` that refused it. A shorter
        list: the next submission found no room (`NoRoom`); it and those after it were
        not submitted."""
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

    def close(self) -> None:
        """The driver is done: end what the backend started for it and still runs (the
        local processes and their Ray head); work that outlives its driver (a RayJob, a
        SLURM job) is left to a later driver."""
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


def submitted_until_full(
    backend: ExperimentBackend, submissions: Sequence[Submission]
) -> list[BackendRef | Refused]:
    """`submit_many` one by one: each answer in order, until one finds no room."""
    answers: list[BackendRef | Refused] = []
    for submission in submissions:
        try:
            answers.append(submitted_or_refused(backend, submission))
        except NoRoom:
            break
    return answers
