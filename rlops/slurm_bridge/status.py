"""The bridge's status of an RLExperiment, from its job and its run directory (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rlops.api.experiment import (
    Backend,
    BackendRef,
    ExperimentResult,
    Phase,
    Progress,
    RLExperimentStatus,
    StopSpec,
)
from rlops.api.meta import Condition
from rlops.api.runinfo import ProgressRecord, RunResult
from rlops.backends.slurm import JobObservation, JobPhase

ACTIVE = (Phase.PENDING, Phase.SUBMITTED, Phase.RUNNING)


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


def percent(record: ProgressRecord, stop: StopSpec) -> float | None:
    """The furthest stop criterion, in percent of its budget."""
    fractions = []
    if stop.timesteps:
        fractions.append(record.timesteps / stop.timesteps)
    if stop.iterations:
        fractions.append(record.iteration / stop.iterations)
    if stop.wall_time_seconds:
        fractions.append(record.time_seconds / stop.wall_time_seconds)
    return round(min(100.0, 100 * max(fractions)), 1) if fractions else None


def progress_of(record: ProgressRecord, stop: StopSpec) -> Progress:
    updated = datetime.fromtimestamp(record.timestamp, UTC).isoformat(timespec="seconds")
    return Progress(
        iteration=record.iteration,
        timesteps=record.timesteps,
        episode_return_mean=record.episode_return_mean,
        time_seconds=record.time_seconds,
        updated_at=updated.replace("+00:00", "Z"),
        percent=percent(record, stop),
    )


def result_of(result: RunResult, run_dir: Path) -> ExperimentResult:
    best = result.best_checkpoint
    if best and not best.startswith("/"):
        best = str(run_dir / best)
    return ExperimentResult(
        final_objective=result.episode_return_mean,
        best_objective=result.best_episode_return_mean,
        best_checkpoint=best,
        stop_reason=result.stop_reason,
    )


def conditions(phase: Phase, message: str, generation: int | None) -> list[Condition]:
    """kstatus: Ready when Succeeded, Stalled when Failed, Reconciling on the way."""

    def condition(kind: str, value: bool) -> Condition:
        return Condition(type=kind, status="True" if value else "False", reason=phase.value,
                         message=message, observed_generation=generation)  # fmt: skip

    return [
        condition("Ready", phase is Phase.SUCCEEDED),
        condition("Reconciling", phase in ACTIVE),
        condition("Stalled", phase is Phase.FAILED),
    ]


def with_transitions(new: list[Condition], old: list[Condition], now: str) -> list[Condition]:
    """Keep lastTransitionTime where a condition's status did not change."""
    before = {c.type: c for c in old}
    out = []
    for c in new:
        prev = before.get(c.type)
        when = prev.last_transition_time if prev and prev.status == c.status else None
        out.append(c.model_copy(update={"last_transition_time": when or now}))
    return out


def tracked_status(
    old: RLExperimentStatus,
    ref: BackendRef,
    job: JobObservation | None,
    phase: JobPhase,
    record: ProgressRecord | None,
    result: RunResult | None,
    stop: StopSpec,
    run_dir: Path,
    generation: int | None,
    now: str,
    attempts: int,
) -> RLExperimentStatus:
    """The new status of a submitted experiment (attempts: requested ones plus requeues)."""
    started = old.started_at or (slurm_time(job.start_time) if job else None)
    completed = old.completed_at
    if phase.terminal and not completed:
        completed = (slurm_time(job.end_time) if job else None) or now
    return RLExperimentStatus(
        phase=phase.phase,
        backend=Backend.SLURM,
        backend_ref=ref,
        progress=progress_of(record, stop) if record else old.progress,
        result=result_of(result, run_dir) if result and phase.terminal else old.result,
        attempts=attempts,
        message=phase.message,
        started_at=started,
        completed_at=completed if phase.terminal else None,
        observed_generation=generation,
        conditions=with_transitions(
            conditions(phase.phase, phase.message, generation), old.conditions, now
        ),
    )


def _with_phase(
    old: RLExperimentStatus,
    phase: Phase,
    message: str,
    generation: int | None,
    now: str,
    **update: object,
) -> RLExperimentStatus:
    """`old` in another phase, with its message and conditions (and `update`)."""
    conditions_now = with_transitions(conditions(phase, message, generation), old.conditions, now)
    return old.model_copy(
        update={
            "phase": phase,
            "backend": Backend.SLURM,
            "message": message,
            "observed_generation": generation,
            "conditions": conditions_now,
            **update,
        }
    )


def submitted_status(
    old: RLExperimentStatus,
    ref: BackendRef,
    attempt: int,
    generation: int | None,
    now: str,
    resumed: bool = False,
) -> RLExperimentStatus:
    """Attempt `attempt` submitted (or resumed): the outcome of an earlier run is cleared."""
    how = "resumed" if resumed else "submitted"
    message = f"{how} as SLURM job {ref.job_id} on cluster {ref.cluster}"
    if attempt > 1:
        message += f" (attempt {attempt})"
    return _with_phase(old, Phase.SUBMITTED, message, generation, now, backend_ref=ref,
                       attempts=attempt, result=None, completed_at=None)  # fmt: skip


def replacing_status(
    old: RLExperimentStatus, attempt: int, generation: int | None, now: str
) -> RLExperimentStatus:
    """The job of attempt `attempt - 1` was cancelled; attempt `attempt` follows once it ends."""
    message = f"replacing attempt {attempt - 1}"
    return _with_phase(old, Phase.SUBMITTED, message, generation, now)


def stopped_status(
    old: RLExperimentStatus,
    reason_message: str,
    progress: Progress | None,
    generation: int | None,
    now: str,
) -> RLExperimentStatus:
    """Stopped through `rlops.dev/stop`: the last progress is kept."""
    return _with_phase(old, Phase.STOPPED, reason_message, generation, now,
                       progress=progress or old.progress, completed_at=now)  # fmt: skip


def paused_status(
    old: RLExperimentStatus,
    reason_message: str,
    progress: Progress | None,
    generation: int | None,
    now: str,
) -> RLExperimentStatus:
    """Paused through `rlops.dev/pause`: the last progress is kept; not finished."""
    return _with_phase(old, Phase.PAUSED, reason_message, generation, now,
                       progress=progress or old.progress, completed_at=None)  # fmt: skip


def resuming_status(
    old: RLExperimentStatus, job_id: str, generation: int | None, now: str
) -> RLExperimentStatus:
    """Resumed while the paused job still checkpoints: Paused until that job has ended."""
    message = f"resuming once job {job_id} has ended"
    return _with_phase(old, Phase.PAUSED, message, generation, now)


def failed_status(
    old: RLExperimentStatus,
    message: str,
    generation: int | None,
    now: str,
    attempts: int | None = None,
) -> RLExperimentStatus:
    update: dict[str, object] = {"completed_at": now}
    if attempts is not None:
        update["attempts"] = attempts
    return _with_phase(old, Phase.FAILED, message, generation, now, **update)
