"""A Kubernetes trial told its ASHA pause point: the sweep's child manifest carries its first
rung in `rlops.dev/pause-at`, the promotion patch moves it to the next rung (or removes it past
the last), the RayJob passes it to the runtime as RLOPS_PAUSE_AT_ITERATION, and a run that
ended there by itself (exit 75, result `paused`: a failed Ray job) becomes Paused, held there
until a promotion moves the annotation, and counts as pause-requested for its sweep."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml

from rlops.api import Phase, RLExperiment, Sweep
from rlops.backends.kuberay import build_rayjob
from rlops.lifecycle import Observation, Requests, ended_phase
from rlops.lifecycle.pausepoint import at_pause_point, reached_pause_point
from rlops.operator.experiments import resuming
from rlops.operator.sweeps import plan_actions, reconcile_sweep, trial_state
from rlops.sweep import Plan, SweepStatus
from tests.backends.kuberay_fixtures import settings
from tests.backends.kuberay_fixtures import stored as stored_experiment
from tests.builders import child_trial, experiment, rayjob, sweep
from tests.operator.test_experiment_reconcile import reconcile

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PAUSE_AT = "rlops.dev/pause-at"
# gracePeriod 2, reductionFactor 3, 10 iterations: rungs at 2 and 6 (18 is past the budget).
ASHA = {"type": "asha", "variant": "promotion", "gracePeriod": 2, "reductionFactor": 3}


def asha_sweep(**rule: Any) -> Sweep:
    builder = sweep("asha", namespace="ns").param("config.training.lr", "grid", values=[0.1, 0.2])
    builder.template("placement", {"backend": "kubernetes"}).template("stop", {"iterations": 10})
    builder.set("spec.earlyStopping", {**ASHA, **rule}).set("spec.parallelism", 2)
    body = builder.obj()
    body["metadata"].update(uid="sweep-uid", generation=1)
    return Sweep.model_validate(body)


def test_a_child_carries_its_first_rung_and_a_plain_sweep_none() -> None:
    children = reconcile_sweep(asha_sweep(), [], NOW).create
    assert [c["metadata"]["annotations"][PAUSE_AT] for c in children] == ["2", "2"]
    judged = reconcile_sweep(asha_sweep(variant="stopping"), [], NOW).create
    assert all(PAUSE_AT not in c["metadata"]["annotations"] for c in judged)


def promote(spec: Sweep, promotions: int) -> dict[str, Any]:
    """The patch that resumes a Paused trial promoted `promotions` times so far."""
    child = child_trial(reconcile_sweep(spec, [], NOW).create[0], phase="Paused", attempts=1)
    annotations = child["metadata"]["annotations"]
    annotations.update({"rlops.dev/pause": "at a rung", "rlops.dev/promotions": str(promotions)})
    trials = [t for t in [trial_state(child, NOW)] if t is not None]
    engine = Plan(create=[], retry=[], stop=[], move=[], status=SweepStatus(), done=False,
                  pause=[], resume=[child["metadata"]["name"]])  # fmt: skip
    [(_, patch)] = plan_actions(spec, engine, trials, [child], NOW).patches
    changes: dict[str, Any] = patch["metadata"]["annotations"]
    return changes


def test_a_promotion_moves_the_pause_point_to_the_next_rung_then_removes_it() -> None:
    spec = asha_sweep()
    first = promote(spec, 0)
    assert first == {"rlops.dev/pause": None, "rlops.dev/promotions": "1", PAUSE_AT: "6"}
    assert promote(spec, 1)[PAUSE_AT] is None  # past the last rung: its whole budget


def test_the_rayjob_passes_the_pause_point_to_the_runtime() -> None:
    body = experiment("t").kubernetes().obj()
    body["metadata"]["annotations"] = {PAUSE_AT: "6"}
    job = build_rayjob(stored_experiment(body), settings())
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["env_vars"]
    assert env["RLOPS_PAUSE_AT_ITERATION"] == "6"
    body["metadata"]["annotations"] = {}
    plain = build_rayjob(stored_experiment(body), settings())
    assert "RLOPS_PAUSE_AT_ITERATION" not in yaml.safe_load(plain["spec"]["runtimeEnvYAML"])


def trial(status: dict[str, Any] | None, pause_at: str = "2") -> RLExperiment:
    body = experiment("cp", namespace="ns").kubernetes().obj()
    body["metadata"].update(uid="u-1", generation=1, annotations={PAUSE_AT: pause_at})
    if status is not None:
        body["status"] = status
    return RLExperiment.model_validate(body)


def ended_at(iteration: int, phase: str = "Running") -> dict[str, Any]:
    """The status once the runtime posted a `paused` result at `iteration`."""
    return {
        "phase": phase, "backend": "kubernetes", "attempts": 1,
        "backendRef": {"kind": "RayJob", "name": "cp", "namespace": "ns"},
        "progress": {"iteration": iteration, "timesteps": 100 * iteration},
        "result": {"stopReason": "paused"},
    }  # fmt: skip


EXIT_75 = "Job entrypoint command failed with exit code 75"


def test_a_run_that_ended_at_its_pause_point_is_paused_not_failed() -> None:
    actions = reconcile(trial(ended_at(2)), rayjob("Failed", "FAILED", message=EXIT_75),
                                   NOW)  # fmt: skip
    assert actions.status is not None and actions.status.phase is Phase.PAUSED
    assert actions.status.message == "paused: ended at its pause point, iteration 2"
    assert actions.cancel and actions.submit_attempt is None  # its RayJob goes, no retry
    assert actions.status.completed_at is None  # not finished


def test_paused_at_the_pause_point_it_waits_until_a_promotion_moves_it() -> None:
    held = trial(ended_at(2, phase="Paused"))
    assert not resuming(held)
    waiting = reconcile(held, None, NOW)
    assert waiting.status is not None and waiting.status.phase is Phase.PAUSED
    assert waiting.submit_attempt is None and not waiting.cancel
    promoted = trial(ended_at(2, phase="Paused"), pause_at="6")
    assert resuming(promoted)
    resumed = reconcile(promoted, None, NOW)
    assert resumed.submit_attempt == 1  # the same attempt again, from its checkpoint
    assert resumed.status is not None and resumed.status.attempts == 1


def test_a_failure_before_the_pause_point_stays_a_failure() -> None:
    early = {**ended_at(1), "result": {"stopReason": None}}
    failed = reconcile(trial(early), rayjob("Failed", "FAILED"), NOW)
    assert failed.status is not None and failed.status.phase is Phase.FAILED
    short = reconcile(trial(ended_at(1)), rayjob("Failed", "FAILED"), NOW)
    assert short.status is not None and short.status.phase is Phase.FAILED


def test_a_stop_wins_over_the_pause_point() -> None:
    body = trial(ended_at(2)).model_dump(by_alias=True, exclude_none=True)
    body["metadata"]["annotations"]["rlops.dev/stop"] = "below the cutoff"
    actions = reconcile(RLExperiment.model_validate(body),
                                   rayjob("Failed", "FAILED"), NOW)  # fmt: skip
    assert actions.status is not None and actions.status.phase is Phase.STOPPED


def test_the_lifecycle_reads_the_end_by_ended_phases_rule() -> None:
    assert reached_pause_point({PAUSE_AT: "2"}, "paused", 2) == 2
    assert reached_pause_point({PAUSE_AT: "2"}, "paused", 1) is None
    assert reached_pause_point({PAUSE_AT: "x"}, "paused", 9) is None
    assert reached_pause_point({}, "paused", 9) is None
    failed = Observation(Phase.FAILED, "exit 75", terminal=True, lingers=True)
    requests, work = at_pause_point(Requests(), failed, {PAUSE_AT: "2"}, "paused", 2)
    assert requests.pause == "ended at its pause point, iteration 2"
    assert work is not None and work.phase is Phase.PAUSED and work.lingers
    paused = Observation(Phase.PAUSED, "", terminal=True)
    assert work.phase is ended_phase(paused, requests)
    running = Observation(Phase.RUNNING, "training")
    assert at_pause_point(Requests(), running, {}, None, 5) == (Requests(), running)


def test_a_pause_asked_once_the_run_reported_its_pause_point_waits_for_its_own_end() -> None:
    """The sweep saw the rung in the progress and asked for a pause: the RayJob is not
    deleted under a run that is writing its checkpoint and ending by itself."""
    body = trial({**ended_at(2), "result": None}).model_dump(by_alias=True, exclude_none=True)
    body["metadata"]["annotations"]["rlops.dev/pause"] = "at an ASHA rung"
    asked = RLExperiment.model_validate(body)
    running = reconcile(asked, rayjob("Running", "RUNNING"), NOW)
    assert running.status is not None and running.status.phase is Phase.RUNNING
    assert not running.cancel
    body["status"]["progress"]["iteration"] = 1  # before its pause point: ended as asked
    early = reconcile(RLExperiment.model_validate(body), rayjob("Running", "RUNNING"),
                                 NOW)  # fmt: skip
    assert early.cancel and early.status is not None and early.status.phase is Phase.PAUSED


def test_the_sweep_counts_a_trial_paused_at_its_pause_point_as_pause_requested() -> None:
    child = child_trial(reconcile_sweep(asha_sweep(), [], NOW).create[0], **ended_at(2, "Paused"))
    state = trial_state(child, NOW)
    assert state is not None and (state.phase, state.pause_requested) == (Phase.PAUSED, True)
    child["metadata"]["annotations"][PAUSE_AT] = "6"  # promoted: resuming, under way
    moved = trial_state(child, NOW)
    assert moved is not None and (moved.phase, moved.pause_requested) == (Phase.PENDING, False)


def test_before_its_result_arrives_the_ray_jobs_message_tells_the_pause_point() -> None:
    """The RayJob's end seen before the result the runtime posted: Ray's message quotes the
    runtime's last line, which says it paused; not a failure to retry."""
    message = (
        "Job entrypoint command failed with exit code 75, last available logs (truncated to "
        "20,000 chars):\nrlops: requeue (paused at iteration 2; checkpointed); exit 75\n"
    )
    early = {**ended_at(1), "result": None}
    actions = reconcile(trial(early), rayjob("Failed", "FAILED", message=message), NOW)
    assert actions.status is not None and actions.status.phase is Phase.PAUSED
    assert actions.status.message == "paused: ended at its pause point, iteration 2"
    assert actions.cancel
    other = rayjob("Failed", "FAILED", message="exit code 1\nrlops: failed (boom); exit 1")
    failed = reconcile(trial(early), other, NOW)
    assert failed.status is not None and failed.status.phase is Phase.FAILED
    assert failed.status.message == "training failed: boom"
    program = message.replace("; checkpointed", "; the program checkpointed")  # a command trainer
    said = reconcile(trial(early), rayjob("Failed", "FAILED", message=program), NOW)
    assert said.status is not None and said.status.phase is Phase.PAUSED
