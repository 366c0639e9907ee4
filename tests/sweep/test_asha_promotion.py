"""ASHA's promotion variant: trials pause at the rung their promotions allow, the top
floor(n / rf) of a rung are resumed before new trials start, nothing goes on for want of
peers, and a sweep ends only once every Paused trial is Stopped."""

from __future__ import annotations

import dataclasses
import math
import random

from rlops.api import Backend, Phase, SweepSpec, validate_manifest
from rlops.sweep import TrialState, plan
from rlops.sweep.early_stopping import asha_promotions, pause_point, rungs
from tests.builders import sweep
from tests.sweep.simulation import Simulation, spec_of

RULE = {"type": "asha", "variant": "promotion", "gracePeriod": 1, "reductionFactor": 3}


def spec(parallelism: int = 2, trials: int = 30, **extra: object) -> SweepSpec:
    builder = sweep().set("spec.algorithm", "random")
    builder.param("config.training.lr", "loguniform", low=1e-5, high=1e-1)
    builder.set("spec.earlyStopping", {**RULE, **extra})
    builder.set("spec.parallelism", parallelism).set("spec.maxTrials", trials)
    return spec_of(builder.template("stop", {"iterations": 27}))  # rungs 1, 3, 9


def trial(
    name: str, value: float, upto: int, phase: Phase = Phase.RUNNING, promotions: int = 0
) -> TrialState:
    """A trial reporting `value` at every iteration up to `upto`."""
    index = int(name[1:])
    history = tuple((i, value) for i in range(1, upto + 1))
    paused = phase is Phase.PAUSED
    return TrialState(
        name, index, 0, {}, phase, history=history, promotions=promotions, pause_requested=paused
    )


def test_a_running_trial_pauses_at_the_rung_its_promotions_allow() -> None:
    s = spec()
    trials = [
        trial("t0", 1.0, 1),  # rung 1 (iteration 1) reached, never promoted
        trial("t1", 1.0, 2, promotions=1),  # promoted past rung 1, short of rung 3
        trial("t2", 1.0, 3, promotions=1),  # at rung 3
        trial("t3", 1.0, 20, promotions=3),  # promoted past every rung: runs to its budget
    ]
    pause, resume = asha_promotions(s, trials, capacity=0, exhausted=False)
    assert (pause, resume) == (["t0", "t2"], [])


def test_a_trial_already_asked_to_pause_or_stop_is_not_asked_again() -> None:
    s = spec()
    asked = dataclasses.replace(trial("t0", 1.0, 2), pause_requested=True)
    stopping = dataclasses.replace(trial("t1", 1.0, 2), stop_requested=True)
    assert asha_promotions(s, [asked, stopping], capacity=2, exhausted=False) == ([], [])


def test_the_first_at_a_rung_waits_for_peers_instead_of_going_on() -> None:
    """The lone leader: alone at rung 3, it stays Paused and a new trial starts instead."""
    s = spec()
    leader = trial("t0", 50.0, 3, Phase.PAUSED, promotions=1)
    below = [trial(f"t{k}", 10.0 + k, 1, Phase.STOPPED) for k in (1, 2)]
    p = plan(s, "sw", [leader, *below])
    assert p.resume == [] and p.stop == []
    assert [c.index for c in p.create] == [3, 4]
    assert p.status.trials.paused == 1 and not p.done


def test_the_top_third_of_a_rung_is_promoted_best_first() -> None:
    s = spec(parallelism=1)
    at_rung = [trial(f"t{k}", float(k), 1, Phase.PAUSED) for k in range(6)]
    p = plan(s, "sw", at_rung)
    assert p.resume == ["t5"]  # floor(6 / 3) = 2 may go on: t5 and t4; one place is free
    assert p.create == []  # a promotion comes before a new trial
    assert p.status.trials.pending == 1 and p.status.trials.paused == 5

    roomier = plan(spec(parallelism=4), "sw", at_rung)
    assert roomier.resume == ["t5", "t4"]
    assert [c.index for c in roomier.create] == [6, 7]


def test_a_rung_counts_every_trial_that_reached_it() -> None:
    """Trials promoted past the rung, or finished, are peers there and take top places."""
    s = spec(parallelism=1)
    past = trial("t0", 9.0, 5, promotions=2)  # already promoted from rung 1 and 3
    done = trial("t1", 8.0, 27, Phase.SUCCEEDED, promotions=3)
    waiting = [trial(f"t{k}", float(k), 1, Phase.PAUSED) for k in (2, 3, 4, 5)]
    # At rung 1: 9, 8, 5, 4, 3, 2: the top two are t0 and t1, so no Paused trial goes on.
    _, resume = asha_promotions(s, [past, done, *waiting], capacity=1, exhausted=False)
    assert resume == []
    # Three more arrive below them: floor(9 / 3) = 3 places, the third is t5's.
    more = [trial(f"t{k}", 0.5, 1, Phase.STOPPED) for k in (6, 7, 8)]
    _, resume = asha_promotions(s, [past, done, *waiting, *more], capacity=1, exhausted=False)
    assert resume == ["t5"]


def test_higher_rungs_are_promoted_first() -> None:
    s = spec(parallelism=1)
    low = [trial(f"t{k}", 1.0 + k, 1, Phase.PAUSED) for k in range(3)]
    high = [trial(f"t{k}", 1.0 + k, 3, Phase.PAUSED, promotions=1) for k in range(3, 6)]
    assert plan(s, "sw", [*low, *high]).resume == ["t5"]


def test_in_min_mode_the_lowest_are_promoted() -> None:
    s = spec(parallelism=1)
    s = s.model_copy(update={"objective": s.objective.model_copy(update={"mode": "min"})})
    at_rung = [trial(f"t{k}", float(k), 1, Phase.PAUSED) for k in range(3)]
    assert plan(s, "sw", at_rung).resume == ["t0"]


def test_a_trial_paused_short_of_its_rung_is_resumed_first() -> None:
    s = spec(parallelism=1)
    early = trial("t0", 1.0, 2, Phase.PAUSED, promotions=1)  # rung 3 not reached
    at_rung = [trial(f"t{k}", 5.0 + k, 1, Phase.PAUSED) for k in range(1, 4)]
    assert plan(s, "sw", [early, *at_rung]).resume == ["t0"]


def test_once_no_trial_can_be_created_the_best_at_a_rung_goes_on() -> None:
    s = spec(parallelism=2, trials=2)
    pair = [trial("t0", 3.0, 1, Phase.PAUSED), trial("t1", 1.0, 1, Phase.PAUSED)]
    p = plan(s, "sw", pair)
    assert p.resume == ["t0"] and p.create == [] and not p.done


def test_paused_trials_are_stopped_at_the_end_and_the_sweep_waits_for_it() -> None:
    s = spec(parallelism=2, trials=3)
    winner = trial("t0", 9.0, 27, Phase.SUCCEEDED, promotions=3)
    paused = [trial("t1", 1.0, 1, Phase.PAUSED), trial("t2", 2.0, 3, Phase.PAUSED, promotions=1)]
    p = plan(s, "sw", [winner, *paused])
    assert p.resume == [] and sorted(p.stop) == ["t1", "t2"] and not p.done
    assert p.status.trials.stopped == 2 and p.status.trials.paused == 0
    stopping = [dataclasses.replace(t, stop_requested=True) for t in paused]
    assert plan(s, "sw", [winner, *stopping]).stop == []
    assert not plan(s, "sw", [winner, *stopping]).done
    stopped = [dataclasses.replace(t, phase=Phase.STOPPED) for t in stopping]
    assert plan(s, "sw", [winner, *stopped]).done


def test_reaching_the_goal_stops_every_paused_trial() -> None:
    s = spec(parallelism=2)
    s = s.model_copy(update={"objective": s.objective.model_copy(update={"goal": 100.0})})
    winner = trial("t0", 150.0, 27, Phase.SUCCEEDED, promotions=3)
    winner = dataclasses.replace(winner, objective=150.0)
    running = trial("t1", 1.0, 5, promotions=2)
    paused = trial("t2", 50.0, 1, Phase.PAUSED)
    p = plan(s, "sw", [winner, running, paused])
    assert p.stop == ["t2"] and p.resume == [] and p.pause == [] and p.create == []
    # A trial under way ends at its next rung (rung 9: it was promoted twice), not its budget.
    at_rung = dataclasses.replace(running, history=(*running.history, (9, 1.0)))
    assert plan(s, "sw", [winner, at_rung, paused]).stop == ["t1", "t2"]


def test_too_many_failures_stop_paused_trials_too() -> None:
    s = spec(parallelism=2).model_copy(update={"max_failed_trials": 0})
    failed = trial("t0", 1.0, 1, Phase.FAILED)
    paused = trial("t1", 1.0, 1, Phase.PAUSED)
    p = plan(s, "sw", [failed, paused])
    assert p.stop == ["t1"] and p.done


class Budgeted(Simulation):
    """Trials start at once, report their learning rate as the metric, and succeed at 27."""

    def _progress(self, t: TrialState) -> None:
        if t.stop_requested or t.pause_requested:
            super()._progress(t)
            return
        iteration = len(t.history) + 1
        value = float(t.parameters["config.training.lr"])
        history = (*t.history, (iteration, value))
        phase = Phase.SUCCEEDED if iteration >= 27 else Phase.RUNNING
        self._set(t.name, phase=phase, history=history, objective=value)


ORDER = [1, 2, 3, 4, 15, 5, 6, 16, 7, 8, 17, 9, 10, 18, 11, 12, 13, 14]  # the worst first


def full_budget_runs(variant: str) -> list[float]:
    """The metrics of the trials that ran all 27 iterations."""
    builder = sweep().param("config.training.lr", "grid", values=ORDER)
    builder.set("spec.earlyStopping", {**RULE, "variant": variant}).set("spec.parallelism", 2)
    sim = Budgeted(spec_of(builder.template("stop", {"iterations": 27})), rng=random.Random(0))
    sim.rng = random.Random(0)
    sim.run(rounds=2000)
    return sorted(
        float(t.parameters["config.training.lr"])
        for t in sim.trials.values()
        if t.history and t.history[-1][0] >= 27
    )


def test_promotion_never_lets_a_lone_leader_run_its_budget() -> None:
    """Under the stopping variant the first trials, the worst, arrive at each rung with no
    peers and go on to 27 iterations; under promotion a trial reaches 27 only from the top
    third of every rung, so the ones that run their budget are among the best."""
    stopping = full_budget_runs("stopping")
    assert 1.0 in stopping and 2.0 in stopping  # the two worst ran their whole budget
    promotion = full_budget_runs("promotion")
    assert 18.0 in promotion  # the best did
    assert min(promotion) >= 13.0, promotion  # and only trials of the top third
    assert len(promotion) < len(stopping)


def test_promotion_with_the_median_rule_is_refused_naming_the_field() -> None:
    body = sweep().set("spec.earlyStopping", {"type": "median", "variant": "promotion"}).obj()
    errors = validate_manifest(body)
    assert [e.path for e in errors] == ["spec.earlyStopping.variant"]
    assert "asha" in errors[0].message.lower()


def test_ties_at_a_rung_go_to_the_lower_index() -> None:
    s = spec(parallelism=1)
    tied = [trial(f"t{k}", 1.0, 1, Phase.PAUSED) for k in (4, 2, 7)]
    assert plan(s, "sw", tied).resume == ["t2"]


def test_a_resumed_trial_waiting_on_kubernetes_is_not_moved_away_from_its_checkpoint() -> None:
    builder = sweep().param("config.training.lr", "grid", values=[0.1, 0.2])
    builder.set("spec.earlyStopping", RULE).set("spec.parallelism", 2)
    builder.set(
        "spec.placement",
        {"backend": "burst", "kubernetes": {"maxParallel": 2}, "slurm": {"cluster": "hpc"},
         "burstAfterSeconds": 10},
    )  # fmt: skip
    s = spec_of(builder.template("stop", {"iterations": 27}))
    waiting = [
        dataclasses.replace(
            trial(f"t{k}", 1.0, 3, Phase.PENDING, promotions=k),
            backend=Backend.KUBERNETES,
            waiting_seconds=60.0,
        )
        for k in (0, 1)
    ]
    assert plan(s, "sw", waiting).move == [("t0", Backend.SLURM)]


def test_the_pause_point_is_the_rung_a_trial_s_promotions_allow() -> None:
    s = spec()  # rungs 1, 3, 9 below 27 iterations
    assert [pause_point(s, p) for p in range(4)] == [1, 3, 9, None]
    halves = spec(gracePeriod=2, reductionFactor=2.5)  # 2, 5, 12.5 -> iteration 13
    assert [pause_point(halves, p) for p in range(4)] == [2, 5, 13, None]
    stopping = spec(variant="stopping")
    assert pause_point(stopping, 0) is None
    # The rungs the engine pauses at, to the bit: 25 * 1.6 * 1.6 is 64.0 in floating point,
    # where 25 * 1.6**2 is 64.00000000000001 (iteration 65).
    odd = spec(gracePeriod=25, reductionFactor=1.6).model_copy(deep=True)
    odd.template.stop.iterations = 200
    rule = odd.early_stopping
    assert rule is not None
    assert [math.ceil(r) for r in rungs(rule, 200, 0)] == [25, 40, 64, 103, 164]
    assert [pause_point(odd, p) for p in range(6)] == [25, 40, 64, 103, 164, None]
