"""plan(): creation up to parallelism, names/labels/seeds, seeds per configuration, retries
up to maxAttempts, stopped trials never restarted, maxFailedTrials, the objective goal,
completion, and the phase and conditions of the status."""

from __future__ import annotations

import random

from rlops.api import Backend, Phase, SweepPhase
from rlops.sweep import TrialState, leaderboard, plan, trial_name
from tests.builders import SweepBuilder, sweep
from tests.sweep.simulation import Simulation, finished, spec_of

LR = "config.training.lr"


def grid(n: int = 6, **spec: object) -> SweepBuilder:
    builder = sweep().param(LR, "grid", values=[10.0**-i for i in range(1, n + 1)])
    for key, value in spec.items():
        builder.set(f"spec.{key}", value)
    return builder


def state(name: str, index: int, phase: Phase, **kw: object) -> TrialState:
    return finished(name, index, phase, **kw)  # type: ignore[arg-type]


def condition(p_status: object, kind: str) -> str:
    return next(c.status for c in p_status.conditions if c.type == kind)  # type: ignore[attr-defined]


def test_first_plan_creates_parallelism_trials_with_names_labels_and_parameters() -> None:
    p = plan(spec_of(grid(parallelism=4)), "sw", [], generation=3)
    assert [t.name for t in p.create] == ["sw-0", "sw-1", "sw-2", "sw-3"]
    first = p.create[0]
    assert first.labels == {"rlops.dev/sweep": "sw", "rlops.dev/trial": "0", "rlops.dev/seed": "0"}
    assert first.parameters == {LR: 0.1}
    assert first.spec.config["training"]["lr"] == 0.1
    assert first.seed == 0 and first.spec.seed == 0
    assert first.backend == Backend.LOCAL and first.spec.placement.backend == Backend.LOCAL
    assert p.status.phase == SweepPhase.RUNNING
    assert p.status.trials.total == 4 and p.status.trials.pending == 4
    assert p.status.observed_generation == 3
    assert all(c.observed_generation == 3 for c in p.status.conditions)
    assert condition(p.status, "Reconciling") == "True"
    assert not p.done


def test_seeds_per_trial_names_and_seeds_share_the_configuration() -> None:
    builder = grid(2, parallelism=10, seedsPerTrial=3).template("seed", 42)
    p = plan(spec_of(builder), "sw", [])
    assert [t.name for t in p.create] == [
        trial_name("sw", i, s, 3) for i in (0, 1) for s in range(3)
    ]
    assert [t.name for t in p.create][:3] == ["sw-0-s0", "sw-0-s1", "sw-0-s2"]
    assert [t.seed for t in p.create] == [42, 43, 44, 42, 43, 44]
    assert {t.parameters[LR] for t in p.create[:3]} == {0.1}


def test_never_more_active_than_parallelism() -> None:
    spec = spec_of(grid(parallelism=3))
    trials = [state("sw-0", 0, Phase.RUNNING), state("sw-1", 1, Phase.SUBMITTED)]
    p = plan(spec, "sw", trials)
    assert [t.name for t in p.create] == ["sw-2"]
    trials.append(state("sw-2", 2, Phase.PENDING))
    assert plan(spec, "sw", trials).create == []


def test_failed_trial_is_retried_until_max_attempts_then_failed_for_good() -> None:
    spec = spec_of(grid(2, parallelism=2, maxAttempts=3))
    p = plan(
        spec, "sw", [state("sw-0", 0, Phase.FAILED, attempts=2), state("sw-1", 1, Phase.RUNNING)]
    )
    assert p.retry == ["sw-0"] and p.create == []
    assert p.status.trials.pending == 1 and p.status.trials.failed == 0
    p = plan(
        spec, "sw", [state("sw-0", 0, Phase.FAILED, attempts=3), state("sw-1", 1, Phase.RUNNING)]
    )
    assert p.retry == [] and p.status.trials.failed == 1


def test_retries_count_against_parallelism_and_come_before_new_trials() -> None:
    spec = spec_of(grid(parallelism=2, maxAttempts=2))
    trials = [state(f"sw-{i}", i, Phase.FAILED) for i in range(3)]
    p = plan(spec, "sw", trials)
    assert p.retry == ["sw-0", "sw-1"] and p.create == []
    assert p.status.trials.pending == 3  # two retried now, one awaiting its retry


def test_a_stopped_trial_is_never_restarted_nor_recreated() -> None:
    spec = spec_of(grid(2, parallelism=2, maxAttempts=5))
    trials = [state("sw-0", 0, Phase.STOPPED, objective=1.0), state("sw-1", 1, Phase.STOPPED)]
    p = plan(spec, "sw", trials)
    assert p.create == [] and p.retry == []
    assert p.done and p.status.trials.stopped == 2


def test_too_many_failed_configurations_fail_the_sweep_and_stop_the_rest() -> None:
    spec = spec_of(grid(parallelism=3, maxFailedTrials=1))
    trials = [
        state("sw-0", 0, Phase.FAILED),
        state("sw-1", 1, Phase.FAILED),
        state("sw-2", 2, Phase.RUNNING),
    ]
    p = plan(spec, "sw", trials)
    assert p.done and p.create == [] and p.stop == ["sw-2"]
    assert p.status.phase == SweepPhase.FAILED
    assert condition(p.status, "Stalled") == "True" and condition(p.status, "Ready") == "False"
    assert "maxFailedTrials (1)" in (p.status.message or "")


def test_failures_within_the_budget_keep_going() -> None:
    spec = spec_of(grid(parallelism=1, maxFailedTrials=1))
    p = plan(spec, "sw", [state("sw-0", 0, Phase.FAILED)])
    assert not p.done and [t.name for t in p.create] == ["sw-1"]


def test_goal_stops_creation_lets_running_trials_end_then_succeeds() -> None:
    spec = spec_of(grid(parallelism=2).set("spec.objective", {"goal": 100.0}))
    trials = [state("sw-0", 0, Phase.SUCCEEDED, objective=120.0), state("sw-1", 1, Phase.RUNNING)]
    p = plan(spec, "sw", trials)
    assert p.create == [] and p.stop == [] and not p.done
    assert "goal 100 reached" in (p.status.message or "")
    trials[1] = state("sw-1", 1, Phase.SUCCEEDED, objective=50.0)
    p = plan(spec, "sw", trials)
    assert p.done and p.status.phase == SweepPhase.SUCCEEDED
    assert condition(p.status, "Ready") == "True" and condition(p.status, "Reconciling") == "False"
    assert p.status.best_trial is not None and p.status.best_trial.name == "sw-0"


def test_goal_in_min_mode_and_only_for_configurations_with_every_seed_finished() -> None:
    spec = spec_of(
        grid(parallelism=1, seedsPerTrial=2).set("spec.objective", {"goal": 1.0, "mode": "min"})
    )
    one_seed = [state("sw-0-s0", 0, Phase.SUCCEEDED, objective=0.5)]
    p = plan(spec, "sw", one_seed)
    assert [t.name for t in p.create] == ["sw-0-s1"]  # half a configuration reaches no goal
    both = [*one_seed, state("sw-0-s1", 0, Phase.SUCCEEDED, objective=0.9, seed_index=1)]
    p = plan(spec, "sw", both)
    assert p.done and p.create == [] and p.status.phase == SweepPhase.SUCCEEDED


def test_done_when_every_configuration_finished() -> None:
    spec = spec_of(grid(3, parallelism=3))
    trials = [state(f"sw-{i}", i, Phase.SUCCEEDED, objective=float(i)) for i in range(3)]
    p = plan(spec, "sw", trials)
    assert p.done and p.status.phase == SweepPhase.SUCCEEDED
    assert p.status.message is not None and p.status.message.startswith("3/3 configurations")


def test_done_without_any_success_is_failed() -> None:
    spec = spec_of(grid(2, parallelism=2))
    p = plan(spec, "sw", [state(f"sw-{i}", i, Phase.FAILED) for i in range(2)])
    assert p.done and p.status.phase == SweepPhase.FAILED
    assert condition(p.status, "Stalled") == "True"


def test_a_missing_configuration_below_the_highest_is_created_again() -> None:
    spec = spec_of(grid(parallelism=2))
    trials = [state("sw-0", 0, Phase.SUCCEEDED, objective=1.0), state("sw-2", 2, Phase.RUNNING)]
    p = plan(spec, "sw", trials)
    assert [(t.name, t.parameters[LR]) for t in p.create] == [("sw-1", 0.01)]


def test_objective_is_the_mean_over_seeds_and_top_is_bounded() -> None:
    spec = spec_of(grid(6, seedsPerTrial=2))
    trials = []
    for i in range(6):
        for s in range(2):
            value = 10.0 * i + (4.0 if s else 0.0)
            trials.append(
                state(
                    f"sw-{i}-s{s}",
                    i,
                    Phase.SUCCEEDED,
                    objective=value,
                    seed_index=s,
                    parameters={LR: i},
                )
            )
    board = leaderboard(spec, trials)
    assert [(t.name, t.objective) for t in board[:2]] == [("sw-5-s0", 52.0), ("sw-4-s0", 42.0)]
    p = plan(spec, "sw", trials)
    assert len(p.status.top) == 5 and p.status.top[0] == board[0]
    assert p.status.best_trial == board[0] and p.status.best_trial.parameters == {LR: 5}


def test_a_whole_grid_runs_to_completion_with_each_configuration_once() -> None:
    sim = Simulation(
        spec_of(grid(6, parallelism=2, seedsPerTrial=2, maxAttempts=2)),
        rng=random.Random(4),
        fail_rate=0.1,
        objective=lambda params, seed: -abs(params[LR] - 0.001) + seed,
    )
    final = sim.run()
    assert sorted(sim.created) == sorted(
        trial_name("sw", i, s, 2) for i in range(6) for s in range(2)
    )
    assert final.status.trials.total == 12
    assert final.status.phase in (SweepPhase.SUCCEEDED, SweepPhase.FAILED)
