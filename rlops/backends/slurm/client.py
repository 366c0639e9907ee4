"""The one small protocol of a SLURM client, and what it observes of a job.

Two clients implement it: `CliSlurmClient` (sbatch/squeue/scontrol/scancel) and
`RestSlurmClient` (slurmrestd). Both report every command they run, with its
duration, to an optional observer, so metrics and benchmarks count calls the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

ATTEMPT_KEY = "attempt"  # `--comment=rlops-uid=<uid>,attempt=<n>`: the job runs attempt n
# (command, seconds, ok): called once per command a client runs.
CommandObserver = Callable[[str, float, bool], None]


class SlurmUnavailable(RuntimeError):
    """slurmctld did not answer (after retries); the caller tries again next poll."""


class SubmitError(RuntimeError):
    """SLURM rejected a batch script; the message says why."""


class SlurmRefused(RuntimeError):
    """SLURM answered but refused a request about one job (not ours, say): that job's
    problem, not an outage, so the caller does not retry the whole poll for it."""


@dataclass(frozen=True)
class JobObservation:
    """One SLURM job as the controller reports it.

    An array task's `job_id` is `<array job>_<task>` (what scancel, squeue -j and sacct -j
    take); `raw_id` is the number SLURM gave the task itself (its SLURM_JOB_ID).
    """

    job_id: str
    name: str
    state: str  # the base state: PENDING, RUNNING, COMPLETED, ...
    reason: str = ""
    exit_code: int | None = None
    signal: int | None = None
    restarts: int = 0
    submit_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    nodes: str = ""
    comment: str = ""
    raw_id: str = ""
    user_id: int | None = None  # the owner's uid, where the command tells it (scontrol)

    @property
    def attempt(self) -> int:
        """The attempt the job runs, from its comment (1 when the comment names none)."""
        for item in self.comment.split(","):
            key, _, value = item.strip().partition("=")
            if key == ATTEMPT_KEY and value.isdigit():
                return int(value)
        return 1


class SlurmClient(Protocol):
    """Submit, observe and cancel SLURM jobs. `jobs` is one batched call however many ids."""

    def submit(self, script: str, *, hold: bool = False, comment: str | None = None) -> str:
        """Submit a batch script (comment: replaces its `--comment`); returns the job id."""
        ...

    def jobs(self, job_ids: Iterable[str]) -> dict[str, JobObservation]:
        """Every given job SLURM still knows, by id (finished ones included, from accounting
        where slurmctld has forgotten them and the client can reach it)."""
        ...

    def find_by_name(self, name: str) -> list[JobObservation]:
        """Jobs (any state) with this job name, oldest first."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel a job; a job that has already finished is fine."""
        ...

    def terminate(self, job_id: str) -> None:
        """Ask a job to end with a checkpoint: SIGTERM to its batch shell alone, which
        forwards it to the runtime while Ray keeps running (the job then ends by itself,
        exit 75). A job that has not started is cancelled; a finished one is fine."""
        ...
