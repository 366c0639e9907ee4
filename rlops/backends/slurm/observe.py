"""A SLURM job as the lifecycle sees it: one normalised `Observation` (pure but for
reading the run directory's result.json through `experiment_phase`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rlops.api.experiment import RLExperiment
from rlops.backends.slurm.backend import experiment_phase
from rlops.backends.slurm.client import JobObservation
from rlops.backends.slurm.pack import trial_view
from rlops.lifecycle.observation import Observation


def slurm_time(text: str | None) -> str | None:
    """SLURM's local `YYYY-MM-DDTHH:MM:SS` as RFC 3339 UTC."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text if text.endswith("Z") else None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def observe_job(
    experiment: RLExperiment, job_id: str, job: JobObservation | None, run_dir: Path,
    attempts: int,
) -> Observation:  # fmt: skip
    """The job (None: SLURM forgot it, and result.json decides) as an Observation; its
    attempt is the job's comment's, its retries SLURM's requeues (`attempts`: the status's,
    for a job SLURM forgot). A pack job is seen as the trial's own (`pack.trial_view`)."""
    job = trial_view(job, run_dir, job_id)
    phase = experiment_phase(experiment, job_id, job, run_dir)
    return Observation(
        phase=phase.phase,
        message=phase.message,
        retries=job.restarts if job is not None else 0,
        started_at=slurm_time(job.start_time) if job is not None else None,
        completed_at=slurm_time(job.end_time) if job is not None else None,
        terminal=phase.terminal,
        attempt=job.attempt if job is not None else attempts,
        name=f"job {job_id}",
    )


def queue_wait_seconds(job: JobObservation) -> float | None:
    """Seconds from submission to start; None until the job has started.

    SLURM reports a pending job's *expected* start time, and a job cancelled while
    pending gets its cancel time as start time, so a start counts only for a job that
    left PENDING with nodes allocated. A requeued job keeps its id and is counted once.
    """
    ran = job.state != "PENDING" and bool(job.nodes) and job.nodes != "(null)"
    if not ran or not job.submit_time or not job.start_time:
        return None
    try:
        submit, start = _instant(job.submit_time), _instant(job.start_time)
    except ValueError:
        return None
    return max(0.0, (start - submit).total_seconds())


def _instant(text: str) -> datetime:
    """A SLURM time (ISO, `Z` or naive local time as squeue prints it) as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.astimezone()
