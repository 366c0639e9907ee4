"""The experiment state machine (pure): first submission, RayJob status mapped into the phase,
kstatus conditions and observedGeneration, retries through `rlops.dev/attempt`, stops through
`rlops.dev/stop`, pauses and resumes through `rlops.dev/pause`, the pre-running deadline
cancelling the RayJob, a vanished RayJob, experiments of other backends ignored (and cleaned up
after a move), and progress/result folding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rlops.api import Backend, KubernetesPlacement, Phase, RLExperiment, StopSpec
from rlops.api.runinfo import ProgressRecord, RunResult
from rlops.backends.kuberay import rayjob_work
from rlops.operator.experiments import (
    ExperimentActions,
    expects_rayjob,
    percent_of_budget,
    reconcile_experiment,
    resuming,
    with_progress,
    with_result,
)
from tests.builders import experiment, rayjob

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def reconcile(
    experiment: RLExperiment, rayjob: dict[str, Any] | None, now: datetime
) -> ExperimentActions:
    """The step from the RayJob `rayjob` as the KubeRay backend observes it."""
    placement = experiment.spec.placement.kubernetes or KubernetesPlacement()
    return reconcile_experiment(experiment, rayjob_work(rayjob, placement, now), now)


def stored(
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **placement: Any,
) -> RLExperiment:
    body = experiment("cp", namespace="ns").kubernetes(**placement).obj()
    body["metadata"].update(uid="u-1", generation=2, annotations=annotations or {})
    if status is not None:
        body["status"] = status
    return RLExperiment.model_validate(body)


def submitted(attempts: int = 1) -> dict[str, Any]:
    return {
        "phase": "Submitted",
        "backend": "kubernetes",
        "attempts": attempts,
        "backendRef": {"kind": "RayJob", "name": "cp", "namespace": "ns"},
    }


def conditions(actions: Any) -> dict[str, str]:
    return {c.type: c.status for c in actions.status.conditions}


def test_new_experiment_submits_attempt_one() -> None:
    actions = reconcile(stored(), None, NOW)
    assert actions.submit_attempt == 1 and not actions.cancel
    status = actions.status
    assert status.phase is Phase.SUBMITTED and status.attempts == 1
    assert status.backend is Backend.KUBERNETES
    assert status.backend_ref is not None and status.backend_ref.name == "cp"
    assert status.observed_generation == 2
    assert conditions(actions) == {"Ready": "False", "Reconciling": "True", "Stalled": "False"}


def test_running_rayjob_makes_a_running_experiment() -> None:
    actions = reconcile(
        stored(submitted()), rayjob("Running", "RUNNING", startTime="2025-01-01T11:59:30Z"), NOW
    )
    assert actions.submit_attempt is None
    assert actions.status.phase is Phase.RUNNING
    assert actions.status.started_at == "2025-01-01T11:59:30Z"


def test_success_is_ready_failure_is_stalled() -> None:
    done = reconcile(stored(submitted()), rayjob("Complete", "SUCCEEDED"), NOW)
    assert done.status.phase is Phase.SUCCEEDED and done.status.completed_at
    assert conditions(done) == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    failed = reconcile(stored(submitted()), rayjob("Failed", "FAILED"), NOW)
    assert failed.status.phase is Phase.FAILED
    assert conditions(failed) == {"Ready": "False", "Reconciling": "False", "Stalled": "True"}
    assert not failed.cancel  # KubeRay already tore the cluster down


def test_transition_time_kept_while_a_condition_holds() -> None:
    first = reconcile(stored(), None, NOW).status
    later = NOW + timedelta(minutes=5)
    again = reconcile(stored(first.dump()), rayjob("Initializing"), later).status
    assert [c.last_transition_time for c in again.conditions] == [
        c.last_transition_time for c in first.conditions
    ]
    running = reconcile(stored(first.dump()), rayjob("Running", "RUNNING"), later)
    ready = {c.type: c for c in running.status.conditions}
    assert ready["Reconciling"].last_transition_time == first.conditions[1].last_transition_time


def test_stuck_initializing_fails_and_cancels_the_rayjob() -> None:
    stuck = rayjob("Initializing", startTime="2025-01-01T11:40:00Z")
    actions = reconcile(stored(submitted(), preRunningDeadlineSeconds=600), stuck, NOW)
    assert actions.status.phase is Phase.FAILED
    assert "preRunningDeadlineSeconds=600" in (actions.status.message or "")
    assert actions.cancel
    # Once Failed, a RayJob still holding its cluster keeps being cancelled.
    settled = reconcile(stored(actions.status.dump()), stuck, NOW)
    assert settled.cancel and settled.status.phase is Phase.FAILED


def test_initializing_asks_to_be_looked_at_when_the_deadline_passes() -> None:
    young = rayjob("Initializing", startTime="2025-01-01T11:58:00Z")
    actions = reconcile(stored(submitted(), preRunningDeadlineSeconds=600), young, NOW)
    assert actions.status.phase is Phase.SUBMITTED
    assert actions.recheck_after is not None and 480 < actions.recheck_after <= 482


def test_kuberay_retries_count_as_attempts() -> None:
    actions = reconcile(stored(submitted()), rayjob("Retrying", "FAILED", failed=1), NOW)
    assert actions.status.phase is Phase.SUBMITTED
    assert actions.status.attempts == 2


def test_retry_annotation_replaces_the_old_rayjob_then_submits() -> None:
    failed = {**submitted(), "phase": "Failed"}
    old = rayjob("Failed", "FAILED", attempt=1)
    asked = stored(failed, annotations={"rlops.dev/attempt": "2"})
    first = reconcile(asked, old, NOW)
    assert first.cancel and first.submit_attempt is None
    assert first.status.phase is Phase.SUBMITTED
    second = reconcile(
        stored(first.status.dump(), annotations={"rlops.dev/attempt": "2"}), None, NOW
    )
    assert second.submit_attempt == 2 and second.status.attempts == 2
    third = reconcile(
        stored(second.status.dump(), annotations={"rlops.dev/attempt": "2"}),
        rayjob("Running", "RUNNING", attempt=2),
        NOW,
    )
    assert third.submit_attempt is None and third.status.phase is Phase.RUNNING
    assert third.status.attempts == 2


def test_finished_experiment_is_not_resubmitted() -> None:
    done = {**submitted(), "phase": "Succeeded"}
    actions = reconcile(stored(done), None, NOW)  # RayJob gone after its TTL
    assert actions.submit_attempt is None and not actions.cancel
    assert actions.status.phase is Phase.SUCCEEDED


def test_stop_annotation_cancels_and_marks_stopped() -> None:
    actions = reconcile(
        stored(submitted(), annotations={"rlops.dev/stop": "stopped by sweep s"}),
        rayjob("Running", "RUNNING"),
        NOW,
    )
    assert actions.cancel
    assert actions.status.phase is Phase.STOPPED
    assert actions.status.message == "stopped: stopped by sweep s"
    assert conditions(actions) == {"Ready": "False", "Reconciling": "False", "Stalled": "False"}


PAUSE = {"rlops.dev/pause": "paused by sweep s at an ASHA rung"}
PROGRESS = {"iteration": 4, "timesteps": 2000, "episodeReturnMean": 55.0}


def running(attempts: int = 1, **status: Any) -> dict[str, Any]:
    return {**submitted(attempts), "phase": "Running", "progress": PROGRESS, **status}


def paused(attempts: int = 1) -> dict[str, Any]:
    return running(attempts, phase="Paused", message="paused: paused by sweep s at an ASHA rung")


def test_pause_annotation_cancels_the_rayjob_and_marks_paused() -> None:
    actions = reconcile(stored(running(), annotations=PAUSE), rayjob("Running", "RUNNING"), NOW)
    assert actions.cancel and actions.submit_attempt is None
    status = actions.status
    assert status.phase is Phase.PAUSED and not status.phase.finished
    assert status.message == "paused: paused by sweep s at an ASHA rung"
    assert status.progress is not None and status.progress.timesteps == 2000  # kept
    assert status.attempts == 1 and status.completed_at is None
    assert conditions(actions) == {"Ready": "False", "Reconciling": "False", "Stalled": "False"}
    assert {c.reason for c in status.conditions} == {"Paused"}


def test_paused_experiment_stays_paused_while_the_annotation_is_there() -> None:
    asked = stored(paused(), annotations=PAUSE)
    assert not expects_rayjob(asked) and not resuming(asked)  # its RayJob is gone on purpose
    gone = reconcile(asked, None, NOW)
    assert gone.status.phase is Phase.PAUSED and gone.submit_attempt is None and not gone.cancel
    assert gone.status.message == "paused: paused by sweep s at an ASHA rung"
    # The paused run's RayJob, still in the index, is cancelled again; one being deleted is not.
    seen = reconcile(asked, rayjob("Running", "RUNNING"), NOW)
    assert seen.cancel and seen.status.phase is Phase.PAUSED
    deleting = rayjob("Running", "RUNNING")
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T11:59:59Z"
    assert not reconcile(asked, deleting, NOW).cancel


def test_resume_submits_the_same_attempt_once_the_paused_rayjob_is_gone() -> None:
    before = paused(attempts=2)
    before["result"] = {"finalObjective": 55.0, "stopReason": "requeue"}
    before["completedAt"] = "2025-01-01T11:00:00Z"
    resumed = stored(before, annotations={"rlops.dev/attempt": "2", "rlops.dev/promotions": "1"})
    assert resuming(resumed)
    deleting = rayjob("Running", "RUNNING", attempt=2)
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T11:59:59Z"
    waiting = reconcile(resumed, deleting, NOW)
    assert waiting.submit_attempt is None and not waiting.cancel
    assert waiting.status.phase is Phase.PAUSED
    assert waiting.status.message == "resuming once RayJob cp has ended"  # as on SLURM

    actions = reconcile(resumed, None, NOW)
    assert actions.submit_attempt == 2 and not actions.cancel  # the same attempt: no retry
    status = actions.status
    assert status.phase is Phase.SUBMITTED and status.attempts == 2
    assert status.backend_ref is not None and status.backend_ref.name == "cp"
    assert status.completed_at is None and status.result is None
    assert status.progress is not None and status.progress.timesteps == 2000
    # Then the new RayJob is followed as any other.
    after = stored(status.dump(), annotations={"rlops.dev/attempt": "2"})
    assert expects_rayjob(after) and not resuming(after)
    run = reconcile(after, rayjob("Running", "RUNNING", attempt=2), NOW)
    assert run.submit_attempt is None and run.status.phase is Phase.RUNNING
    assert run.status.attempts == 2


def test_stop_wins_over_a_pause() -> None:
    both = {**PAUSE, "rlops.dev/stop": "stopped by sweep s"}
    running_now = reconcile(stored(running(), annotations=both), rayjob("Running"), NOW)
    assert running_now.cancel and running_now.status.phase is Phase.STOPPED
    stopped_while_paused = reconcile(stored(paused(), annotations=both), None, NOW)
    assert stopped_while_paused.submit_attempt is None
    status = stopped_while_paused.status
    assert status.phase is Phase.STOPPED and status.message == "stopped: stopped by sweep s"
    assert status.completed_at == "2025-01-01T12:00:00Z"
    assert status.progress is not None and status.progress.timesteps == 2000
    # Stopped with the pause annotation gone: never resumed.
    stop_only = {"rlops.dev/stop": "stopped by sweep s"}
    assert not resuming(stored(paused(), annotations=stop_only))


def test_pause_of_a_finished_experiment_is_ignored() -> None:
    for phase in ("Succeeded", "Failed", "Stopped"):
        done = {**submitted(), "phase": phase, "completedAt": "2025-01-01T11:00:00Z"}
        actions = reconcile(stored(done, annotations=PAUSE), None, NOW)
        assert actions.status.phase is Phase(phase), phase
        assert actions.submit_attempt is None and not actions.cancel
    # A run that ended before the pause was seen keeps its outcome (and its cluster is gone).
    ended = reconcile(stored(running(), annotations=PAUSE), rayjob("Complete", "SUCCEEDED"), NOW)
    assert ended.status.phase is Phase.SUCCEEDED and not ended.cancel


def test_rayjob_deleted_under_a_running_experiment_fails_it() -> None:
    actions = reconcile(stored({**submitted(), "phase": "Running"}), None, NOW)
    assert actions.submit_attempt is None
    assert actions.status.phase is Phase.FAILED
    assert "deleted" in (actions.status.message or "")


def test_other_backends_are_not_touched() -> None:
    body = experiment("cp", namespace="ns").slurm().obj()
    body["metadata"]["uid"] = "u"
    actions = reconcile(RLExperiment.model_validate(body), None, NOW)
    assert actions.status is None and actions.submit_attempt is None and not actions.cancel


def test_moved_to_slurm_cancels_the_rayjob_and_hands_over() -> None:
    body = experiment("cp", namespace="ns").slurm().obj()
    body["metadata"]["uid"] = "u"
    body["status"] = submitted()
    actions = reconcile(RLExperiment.model_validate(body), rayjob("Suspended"), NOW)
    assert actions.cancel
    assert actions.status is not None
    assert actions.status.backend is Backend.SLURM and actions.status.phase is Phase.PENDING
    assert actions.status.backend_ref is None


def record(iteration: int, timesteps: int, ret: float = 10.0) -> ProgressRecord:
    return ProgressRecord(
        iteration=iteration, timesteps=timesteps, time_seconds=iteration * 2.0,
        timestamp=0.0, episode_return_mean=ret, metrics={"custom/score": ret / 2},
    )  # fmt: skip


def test_progress_is_folded_in_with_percent_of_budget() -> None:
    status = stored(submitted()).status
    assert status is not None
    stop = StopSpec(timesteps=2000, iterations=10)
    newer = with_progress(status, stop, record(3, 1500), NOW)
    assert newer.progress is not None
    assert (newer.progress.iteration, newer.progress.timesteps) == (3, 1500)
    assert newer.progress.percent == 75.0
    assert newer.progress.updated_at == "2025-01-01T12:00:00Z"
    assert with_progress(newer, stop, record(2, 1000), NOW) == newer  # older is ignored
    # One rule on every backend: a positive return target counts as return reached / target.
    assert percent_of_budget(StopSpec(episode_return_mean=400), record(1, 10)) == 2.5
    assert percent_of_budget(StopSpec(episode_return_mean=400), record(1, 10, -5.0)) is None


def test_result_uses_the_objective_metric() -> None:
    status = stored(submitted()).status
    assert status is not None
    result = RunResult(
        status="succeeded", exit_code=0, episode_return_mean=150.0,
        best_episode_return_mean=180.0, best_checkpoint="ck/3", stop_reason="timesteps",
    )  # fmt: skip
    default = with_result(status, result, "episode_return_mean", None).result
    assert default is not None
    assert (default.final_objective, default.best_objective) == (150.0, 180.0)
    custom = with_result(status, result, "custom/score", record(4, 100, 60.0)).result
    assert custom is not None and custom.final_objective == 30.0
