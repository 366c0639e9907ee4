"""The sweep reconciler (pure): children become TrialStates (parameters, attempts, objective,
history, waiting time, requested retries, stops and pauses, promotions), the engine's plan
becomes child manifests (owned, labelled, deterministic names) and patches (retry, stop, pause,
resume, move), and the status gets its timestamps. Restarting from the same children gives the
same plan, and a plan asking what the children already show asks nothing twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rlops.api import Backend, Phase, Sweep, SweepPhase, SweepStatus
from rlops.lifecycle.history import decode_history, encode_history
from rlops.operator.sweeps import (
    child_manifest,
    plan_actions,
    reconcile_sweep,
    trial_state,
)
from rlops.sweep import Plan, TrialState
from tests.builders import child_trial, sweep

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def stored_sweep(**spec: Any) -> Sweep:
    builder = sweep("grid", namespace="ns").param("config.training.lr", "grid", values=[0.1, 0.2])
    builder.template("placement", {"backend": "kubernetes"})
    for key, value in spec.items():
        builder.set(f"spec.{key}", value)
    body = builder.obj()
    body["metadata"].update(uid="sweep-uid", generation=3)
    return Sweep.model_validate(body)


def test_first_plan_creates_owned_labelled_children() -> None:
    actions = reconcile_sweep(stored_sweep(parallelism=2), [], NOW)
    names = [c["metadata"]["name"] for c in actions.create]
    assert names == ["grid-0", "grid-1"]
    child = actions.create[0]
    assert child["metadata"]["labels"]["rlops.dev/sweep"] == "grid"
    assert child["metadata"]["labels"]["rlops.dev/trial"] == "0"
    (owner,) = child["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Sweep", "sweep-uid", True)
    assert json.loads(child["metadata"]["annotations"]["rlops.dev/parameters"]) == {
        "config.training.lr": 0.1
    }
    assert child["spec"]["config"]["training"]["lr"] == 0.1
    assert child["spec"]["placement"]["backend"] == "kubernetes"
    assert actions.status.phase is SweepPhase.RUNNING
    assert actions.status.started_at == "2025-01-01T12:00:00Z"
    assert actions.status.observed_generation == 3


def test_same_children_same_plan_no_duplicates() -> None:
    spec = stored_sweep(parallelism=1)
    first = reconcile_sweep(spec, [], NOW)
    again = reconcile_sweep(spec, [], NOW)
    assert first.create == again.create  # a lagging index re-creates by the same name (409)
    running = [child_trial(first.create[0], phase="Running", attempts=1)]
    assert reconcile_sweep(spec, running, NOW).create == []


def test_trial_state_reads_everything_the_engine_needs() -> None:
    manifest = reconcile_sweep(stored_sweep(), [], NOW).create[0]
    manifest["metadata"]["annotations"]["rlops.dev/history"] = encode_history([(1, 9.5), (2, 20)])
    child = child_trial(
        manifest, phase="Succeeded", attempts=2, backend="kubernetes",
        result={"finalObjective": 42.5},
    )  # fmt: skip
    state = trial_state(child, NOW)
    assert state is not None
    assert (state.name, state.index, state.seed_index) == ("grid-0", 0, 0)
    assert state.parameters == {"config.training.lr": 0.1}
    assert (state.phase, state.attempts, state.objective) == (Phase.SUCCEEDED, 2, 42.5)
    assert state.backend is Backend.KUBERNETES
    assert state.history == ((1, 9.5), (2, 20.0))
    waiting = trial_state(child_trial(manifest, phase="Pending"), NOW)
    assert waiting is not None and waiting.waiting_seconds == 3600.0


def test_failed_trial_is_retried_by_annotation_once() -> None:
    spec = stored_sweep(parallelism=2, maxAttempts=3)
    children = [child_trial(c) for c in reconcile_sweep(spec, [], NOW).create]
    children[0]["status"] = {"phase": "Failed", "attempts": 1}
    children[1]["status"] = {"phase": "Running", "attempts": 1}
    actions = reconcile_sweep(spec, children, NOW)
    assert actions.patches == [
        ("grid-0", {"metadata": {"annotations": {"rlops.dev/attempt": "2"}}})
    ]
    # Asked already: the trial counts as pending again, and asking twice asks the same.
    children[0]["metadata"]["annotations"]["rlops.dev/attempt"] = "2"
    state = trial_state(children[0], NOW)
    assert state is not None and state.phase is Phase.PENDING and state.attempts == 2
    assert reconcile_sweep(spec, children, NOW).patches == []


def test_too_many_failures_stops_the_rest_once() -> None:
    spec = stored_sweep(parallelism=2, maxFailedTrials=0)
    children = [child_trial(c) for c in reconcile_sweep(spec, [], NOW).create]
    children[0]["status"] = {"phase": "Failed", "attempts": 1}
    children[1]["status"] = {"phase": "Running", "attempts": 1}
    actions = reconcile_sweep(spec, children, NOW)
    assert actions.stopped == ["grid-1"]
    assert (
        "grid-1",
        {"metadata": {"annotations": {"rlops.dev/stop": "stopped by sweep grid"}}},
    ) in (actions.patches)
    assert actions.status.phase is SweepPhase.FAILED and actions.done
    assert actions.status.completed_at == "2025-01-01T12:00:00Z"
    children[1]["metadata"]["annotations"]["rlops.dev/stop"] = "stopped by sweep grid"
    assert reconcile_sweep(spec, children, NOW).stopped == []


PAUSE = "rlops.dev/pause"
PAUSED_BY = "paused by sweep grid at an ASHA rung"


def promotion_children() -> tuple[Sweep, list[dict[str, Any]]]:
    spec = stored_sweep(parallelism=2)
    children = [child_trial(c) for c in reconcile_sweep(spec, [], NOW).create]
    children[0]["status"] = {"phase": "Running", "attempts": 1}
    children[1]["status"] = {"phase": "Paused", "attempts": 1}
    children[1]["metadata"]["annotations"].update({PAUSE: PAUSED_BY, "rlops.dev/promotions": "1"})
    return spec, children


def planned(
    spec: Sweep, children: list[dict[str, Any]], pause: list[str], resume: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """The patches for an engine plan handed in directly (the engine's own choice aside)."""
    trials = [t for t in (trial_state(c, NOW) for c in children) if t is not None]
    engine = Plan(create=[], retry=[], stop=[], move=[], status=SweepStatus(), done=False,
                  pause=pause, resume=resume)  # fmt: skip
    return plan_actions(spec, engine, trials, children, NOW).patches


def test_trial_state_reads_pauses_and_promotions() -> None:
    _, children = promotion_children()
    running, paused = (trial_state(c, NOW) for c in children)
    assert isinstance(running, TrialState) and isinstance(paused, TrialState)
    assert (running.pause_requested, running.promotions) == (False, 0)
    assert (paused.phase, paused.pause_requested, paused.promotions) == (Phase.PAUSED, True, 1)
    # Pause asked and not yet carried out: still Running, but asked.
    children[0]["metadata"]["annotations"][PAUSE] = PAUSED_BY
    asked = trial_state(children[0], NOW)
    assert asked is not None and (asked.phase, asked.pause_requested) == (Phase.RUNNING, True)
    # Resumed (annotation removed) and not yet restarted: under way again, as Pending.
    del children[1]["metadata"]["annotations"][PAUSE]
    children[1]["metadata"]["annotations"]["rlops.dev/promotions"] = "2"
    resumed = trial_state(children[1], NOW)
    assert resumed is not None
    assert (resumed.phase, resumed.pause_requested, resumed.promotions) == (Phase.PENDING, False, 2)


def test_pause_is_patched_once() -> None:
    spec, children = promotion_children()
    patches = planned(spec, children, pause=["grid-0"], resume=[])
    assert patches == [("grid-0", {"metadata": {"annotations": {PAUSE: PAUSED_BY}}})]
    children[0]["metadata"]["annotations"][PAUSE] = PAUSED_BY  # asked already: not again
    assert planned(spec, children, pause=["grid-0"], resume=[]) == []


def test_resume_removes_the_pause_and_counts_the_promotion_once() -> None:
    spec, children = promotion_children()
    patches = planned(spec, children, pause=[], resume=["grid-1"])
    assert patches == [
        ("grid-1", {"metadata": {"annotations": {PAUSE: None, "rlops.dev/promotions": "2"}}})
    ]
    # The patch applied: the plan asking again changes nothing (promotions stays 2).
    annotations = children[1]["metadata"]["annotations"]
    del annotations[PAUSE]
    annotations["rlops.dev/promotions"] = "2"
    assert planned(spec, children, pause=[], resume=["grid-1"]) == []


def test_burst_moves_a_waiting_trial_to_slurm() -> None:
    spec = stored_sweep(
        parallelism=2,
        placement={
            "backend": "burst", "burstAfterSeconds": 60,
            "kubernetes": {"maxParallel": 2}, "slurm": {"cluster": "hpc"},
        },
    )  # fmt: skip
    children = [child_trial(c) for c in reconcile_sweep(spec, [], NOW).create]
    assert [c["spec"]["placement"]["backend"] for c in children] == ["kubernetes"] * 2
    children[0]["status"] = {"phase": "Pending", "backend": "kubernetes", "attempts": 1}
    children[1]["status"] = {"phase": "Running", "backend": "kubernetes", "attempts": 1}
    moves = [(n, p) for n, p in reconcile_sweep(spec, children, NOW).patches if "spec" in p]
    assert len(moves) == 1
    name, patch = moves[0]
    assert name == "grid-0"
    assert patch["spec"]["placement"]["backend"] == "slurm"
    assert patch["spec"]["placement"]["slurm"]["cluster"] == "hpc"


def test_finished_sweep_names_its_best_trial() -> None:
    spec = stored_sweep(parallelism=2)
    children = [child_trial(c) for c in reconcile_sweep(spec, [], NOW).create]
    for child, objective in zip(children, (10.0, 30.0), strict=True):
        child["status"] = {
            "phase": "Succeeded",
            "attempts": 1,
            "result": {"finalObjective": objective},
        }
    actions = reconcile_sweep(spec, children, NOW)
    assert actions.done and actions.status.phase is SweepPhase.SUCCEEDED
    assert actions.status.best_trial is not None
    assert (actions.status.best_trial.name, actions.status.best_trial.objective) == ("grid-1", 30.0)
    ready = {c.type: c.status for c in actions.status.conditions}
    assert ready == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}


def test_history_round_trips_compactly() -> None:
    points = [(1, 9.123456789), (2, -3.0), (10, 500.0)]
    text = encode_history(points)
    assert text == "1:9.12346,2:-3,10:500"
    assert decode_history(text) == ((1, 9.12346), (2, -3.0), (10, 500.0))
    assert decode_history("") == () and decode_history("x:1,2:y,3:4") == ((3, 4.0),)


def test_custom_objective_metric_is_annotated() -> None:
    spec = stored_sweep(objective={"metric": "env_runners/episode_len_mean", "mode": "max"})
    plan = reconcile_sweep(spec, [], NOW)
    trial = plan.create[0]
    assert trial["metadata"]["annotations"]["rlops.dev/objective"] == "env_runners/episode_len_mean"
    assert "rlops.dev/objective" not in child_manifest_default()["metadata"]["annotations"]


def child_manifest_default() -> dict[str, Any]:
    from rlops.sweep import plan

    spec = stored_sweep()
    return child_manifest(plan(spec.spec, "grid", []).create[0], spec)
