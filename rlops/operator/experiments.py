"""Reconciling one RLExperiment placed on Kubernetes: a pure state machine.

Given the experiment and what the KubeRay backend observes of its RayJob (or none),
`reconcile_experiment` says what to do — submit an attempt, end or cancel the RayJob —
and what the status becomes. Attempts are requested through the annotation
`rlops.dev/attempt` (a sweep retrying a trial sets it to the next attempt); a stop through
`rlops.dev/stop` (its value is the reason). The RayJob carries its attempt in a label, so a
RayJob of an earlier attempt is deleted before the next one is created under
the same name.

A pause through `rlops.dev/pause` deletes the RayJob as a stop does (the runtime
checkpoints on SIGTERM) and leaves the experiment Paused, not finished. Removing
the annotation resumes it: once the paused run's RayJob is gone, the same attempt
is submitted again under the same name, and the runtime continues from its
checkpoint. A stop wins over a pause. A run told its pause point (`rlops.dev/pause-at`,
passed to the runtime by the RayJob) that ended there is Paused the same way, held by the
pause point until a promotion moves it (`rlops.lifecycle.pausepoint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rlops.api import (
    Backend,
    BackendRef,
    Phase,
    Progress,
    RLExperiment,
    RLExperimentStatus,
    StopSpec,
)
from rlops.api.annotations import ANNOTATION_ATTEMPT as ANNOTATION_ATTEMPT
from rlops.api.annotations import ANNOTATION_OBJECTIVE as ANNOTATION_OBJECTIVE
from rlops.api.annotations import ANNOTATION_PAUSE as ANNOTATION_PAUSE
from rlops.api.annotations import ANNOTATION_STOP as ANNOTATION_STOP
from rlops.api.runinfo import PAUSED_REASON, ProgressRecord, RunResult
from rlops.lifecycle import (
    Action,
    Observation,
    Requests,
    apply_step,
    decide,
    progress_of,
    submitted_status,
)
from rlops.lifecycle import percent_of_budget as percent_of_budget
from rlops.lifecycle.machine import EndKind
from rlops.lifecycle.pausepoint import at_pause_point, reached_pause_point
from rlops.lifecycle.progress import experiment_result
from rlops.lifecycle.progress import objective_metric as lifecycle_objective

CREATED_MESSAGE = "RayJob created; waiting for KubeRay"  # as the mapping says of a new RayJob


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ExperimentActions:
    """What the driver must do for one experiment, then the status to write."""

    status: RLExperimentStatus | None  # None: not the operator's to write
    submit_attempt: int | None = None
    cancel: bool = False  # the RayJob goes (with `end`: ended with a checkpoint first)
    end: EndKind | None = None
    resumed: bool = False  # the submission continues a paused attempt
    recheck_after: float | None = None  # seconds after which the status changes without events


def requested_attempt(experiment: RLExperiment) -> int:
    value = experiment.metadata.annotations.get(ANNOTATION_ATTEMPT, "1")
    return max(1, int(value)) if value.isdigit() else 1


def is_ours(experiment: RLExperiment) -> bool:
    return experiment.spec.placement.backend is Backend.KUBERNETES


def expects_rayjob(experiment: RLExperiment) -> bool:
    """The status says a RayJob of the current attempt exists: not seeing one needs a look.

    A Paused experiment's RayJob was deleted on purpose: not seeing it is expected.
    """
    status = experiment.status
    return (
        is_ours(experiment)
        and status is not None
        and not status.phase.finished
        and status.phase is not Phase.PAUSED
        and status.attempts >= requested_attempt(experiment)
        and status.backend_ref is not None
    )


def _result_and_iteration(
    experiment: RLExperiment, work: Observation | None = None
) -> tuple[str | None, int | None]:
    """The stop reason of the result the current run posted (a submission clears the last
    run's) and the last iteration reported; before the result arrives, what the ended
    RayJob's message quotes of the runtime's last line (a pause point reached)."""
    status = experiment.status
    reason = status.result.stop_reason if status and status.result else None
    iteration = status.progress.iteration if status and status.progress else None
    said = work.paused_at if reason is None and work is not None else None
    if said is not None:
        return PAUSED_REASON, max(said, iteration or 0)
    return reason, iteration


def ended_at_pause_point(experiment: RLExperiment) -> int | None:
    """The pause point (`rlops.dev/pause-at`) the current run ended itself at."""
    return reached_pause_point(experiment.metadata.annotations, *_result_and_iteration(experiment))


def pause_point_view(
    experiment: RLExperiment, requests: Requests, work: Observation | None
) -> tuple[Requests, Observation | None]:
    """The requests and the RayJob as the lifecycle reads them given the run's pause point."""
    annotations = experiment.metadata.annotations
    return at_pause_point(requests, work, annotations, *_result_and_iteration(experiment, work))


def resuming(experiment: RLExperiment) -> bool:
    """Paused and no longer asked to be: the next reconcile may submit its RayJob again."""
    status = experiment.status
    annotations = experiment.metadata.annotations
    return (
        is_ours(experiment)
        and status is not None
        and status.phase is Phase.PAUSED
        and ANNOTATION_PAUSE not in annotations
        and ANNOTATION_STOP not in annotations
        and ended_at_pause_point(experiment) is None
    )


def _not_ours(experiment: RLExperiment, work: Observation | None) -> ExperimentActions:
    """Another backend's experiment (e.g. a trial moved to SLURM): only clean up after us."""
    current = experiment.status
    status = None
    if current is not None and current.backend is Backend.KUBERNETES:
        backend = experiment.spec.placement.backend
        status = RLExperimentStatus(
            phase=Phase.PENDING,
            backend=backend,
            attempts=current.attempts,
            progress=current.progress,
            message=f"moved to {backend.value}",
        )
    return ExperimentActions(status=status, cancel=work is not None)


def reconcile_experiment(
    experiment: RLExperiment, work: Observation | None, now: datetime
) -> ExperimentActions:
    """The next step of an experiment on Kubernetes, from its RayJob as the backend
    observes it (`KubeRayBackend.observe`; None: there is none)."""
    if not is_ours(experiment):
        return _not_ours(experiment, work)
    current = experiment.status or RLExperimentStatus()
    requests = Requests.from_annotations(experiment.metadata.annotations)
    requests, work = pause_point_view(experiment, requests, work)
    step = decide(current, requests, work, submitted=current.backend_ref is not None,
                  expected=f"RayJob {experiment.metadata.name}")  # fmt: skip
    generation, when = experiment.metadata.generation, timestamp(now)
    if step.action is Action.SUBMIT:
        assert step.attempt is not None
        ref = BackendRef(
            kind="RayJob", name=experiment.metadata.name, namespace=experiment.metadata.namespace
        )
        status = submitted_status(current, ref, step.attempt, CREATED_MESSAGE,
                                  Backend.KUBERNETES, generation, when)  # fmt: skip
    else:
        status = apply_step(current, step, work, Backend.KUBERNETES, generation, when)
    cancel = step.cancels and work is not None and not work.ending
    return ExperimentActions(
        status=status,
        submit_attempt=step.attempt if step.action is Action.SUBMIT else None,
        cancel=cancel,
        end=step.end if cancel and step.ends else None,
        resumed=step.resumed,
        recheck_after=work.recheck_after if step.track and work is not None else None,
    )


def objective_metric(experiment: RLExperiment) -> str:
    return lifecycle_objective(experiment.metadata.annotations)


def with_progress(
    status: RLExperimentStatus, stop: StopSpec, record: ProgressRecord, now: datetime
) -> RLExperimentStatus:
    """The status with a newer progress record (an older one is ignored)."""
    if status.progress is not None and status.progress.iteration > record.iteration:
        return status
    progress = progress_of(record, stop, timestamp(now))
    return status.model_copy(update={"progress": progress})


def with_result(
    status: RLExperimentStatus, result: RunResult, metric: str, last: ProgressRecord | None
) -> RLExperimentStatus:
    """The status with the outcome the runtime reported at the end of an attempt."""
    outcome = experiment_result(result, metric, last)
    update: dict[str, Any] = {"result": outcome}
    progress = status.progress
    if result.iteration and (progress is None or progress.iteration < result.iteration):
        # The last progress posts were lost (operator down): the result carries the counts.
        update["progress"] = Progress(
            iteration=result.iteration,
            timesteps=result.timesteps,
            episode_return_mean=result.episode_return_mean,
            time_seconds=round(result.time_seconds, 3),
            updated_at=progress.updated_at if progress is not None else None,
            percent=progress.percent if progress is not None else None,
        )
    return status.model_copy(update=update)
