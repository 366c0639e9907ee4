"""The one RLExperiment status builder: a step of the lifecycle, applied to a status."""

from __future__ import annotations

from typing import Any

from rlops.api.experiment import Backend, BackendRef, Phase, RLExperimentStatus
from rlops.lifecycle.conditions import experiment_conditions, stamp_transitions
from rlops.lifecycle.machine import Step
from rlops.lifecycle.observation import Observation


def with_phase(
    old: RLExperimentStatus,
    phase: Phase,
    message: str,
    backend: Backend,
    generation: int | None,
    now: str,
    **update: Any,
) -> RLExperimentStatus:
    """`old` in `phase` with `message`, on `backend`, its conditions stamped (and `update`)."""
    previous = old.conditions
    status = old.model_copy(
        update={"phase": phase, "backend": backend, "message": message, **update}
    )
    return finish(status, previous, generation, now)


def finish(
    status: RLExperimentStatus, previous: list[Any], generation: int | None, now: str
) -> RLExperimentStatus:
    """`status` with observedGeneration and the conditions of its phase."""
    conditions = experiment_conditions(status.phase, status.message or "", generation)
    return status.model_copy(
        update={
            "observed_generation": generation,
            "conditions": stamp_transitions(conditions, previous, now),
        }
    )


def apply_step(
    old: RLExperimentStatus,
    step: Step,
    work: Observation | None,
    backend: Backend,
    generation: int | None,
    now: str,
    **update: Any,
) -> RLExperimentStatus:
    """The status after `step` (a submission is written by `submitted_status` instead)."""
    status = old.model_copy(deep=True, update={"backend": backend, **update})
    if step.track and work is not None:
        status.phase, status.message = work.phase, work.message
        status.attempts = max(status.attempts, work.attempt + work.retries)
        if status.started_at is None and (work.phase is Phase.RUNNING or work.phase.finished):
            status.started_at = work.started_at or (now if work.phase is Phase.RUNNING else None)
        if work.phase.finished:
            status.completed_at = status.completed_at or work.completed_at or now
        else:
            status.completed_at = None
    elif step.phase is not None:
        status.phase = step.phase
        status.message = step.message if step.message is not None else status.message
        if step.finish:
            status.completed_at = now
    return finish(status, old.conditions, generation, now)


def submitted_status(
    old: RLExperimentStatus,
    ref: BackendRef,
    attempt: int,
    message: str,
    backend: Backend,
    generation: int | None,
    now: str,
) -> RLExperimentStatus:
    """Attempt `attempt` submitted (or resumed): the outcome of an earlier run is cleared."""
    return with_phase(old, Phase.SUBMITTED, message, backend, generation, now, backend_ref=ref,
                      attempts=attempt, result=None, completed_at=None)  # fmt: skip
