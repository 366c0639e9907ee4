"""Early stopping from intermediate results: the median rule and ASHA on synthetic histories,
grace periods, minimum peers, min/max modes, and the sweep-level plan that carries them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rlops.api import Phase, SweepSpec
from rlops.sweep import TrialState, plan
from rlops.sweep.early_stopping import early_stops, rungs
from tests.builders import sweep
from tests.sweep.simulation import spec_of


def spec(kind: str, mode: str = "max", iterations: int = 27, **rule: object) -> SweepSpec:
    builder = sweep().param("config.training.lr", "grid", values=[0.1])
    builder.set("spec.earlyStopping", {"type": kind, **rule})
    builder.set("spec.objective", {"mode": mode}).template("stop", {"iterations": iterations})
    return spec_of(builder)


def linear(name: str, slope: float, upto: int, phase: Phase = Phase.RUNNING) -> TrialState:
    """A trial whose metric grows by `slope` per iteration, reported up to `upto`."""
    history = tuple((i, slope * i) for i in range(1, upto + 1))
    return TrialState(name, 0, 0, {}, phase, history=history)


def test_asha_rungs_are_grace_times_powers_of_the_factor_below_max() -> None:
    rule = spec("asha", gracePeriod=1, reductionFactor=3).early_stopping
    assert rule is not None
    assert rungs(rule, 27, 0) == [1.0, 3.0, 9.0]
    assert rungs(rule, None, 10) == [1.0, 3.0, 9.0]


def test_asha_keeps_the_top_third_at_a_rung() -> None:
    s = spec("asha", gracePeriod=1, reductionFactor=3)
    trials = [linear(f"t{k}", float(k), 9) for k in range(1, 10)]
    assert early_stops(s, trials) == [f"t{k}" for k in range(1, 7)]


def test_asha_judges_at_the_highest_rung_reached_against_those_there() -> None:
    s = spec("asha", gracePeriod=1, reductionFactor=3, minTrials=1)
    # Worst at rung 1 but alone at rung 3 so far: the first arrival at a rung goes on.
    ahead = linear("ahead", 1.0, 3)
    behind = [linear(f"b{k}", 5.0 + k, 1) for k in range(3)]
    # At rung 1 the cutoff is the 2/3 quantile of [1, 5, 6, 7], i.e. 6: b0 (5) falls below it.
    assert early_stops(s, [ahead, *behind]) == ["b0"]


def test_asha_waits_for_min_trials_at_a_rung() -> None:
    s = spec("asha", gracePeriod=1, reductionFactor=3, minTrials=4)
    trials = [linear(f"t{k}", float(k), 3) for k in range(1, 4)]
    assert early_stops(s, trials) == []


def test_asha_counts_finished_peers_but_only_stops_running_trials() -> None:
    s = spec("asha", gracePeriod=1, reductionFactor=3)
    done = [linear(f"d{k}", 10.0 + k, 27, Phase.SUCCEEDED) for k in range(3)]
    stopping = TrialState(
        "asked", 0, 0, {}, Phase.RUNNING, history=((1, 0.0),), stop_requested=True
    )
    assert early_stops(s, [*done, linear("slow", 1.0, 9), stopping]) == ["slow"]


def test_asha_in_min_mode_stops_the_highest() -> None:
    s = spec("asha", mode="min", gracePeriod=1, reductionFactor=3)
    trials = [linear(f"t{k}", float(k), 3) for k in range(1, 7)]
    assert early_stops(s, trials) == ["t3", "t4", "t5", "t6"]


@given(st.lists(st.floats(-100, 100), min_size=3, max_size=30, unique=True), st.integers(1, 30))
def test_asha_always_stops_the_worst_and_never_the_best(slopes: list[float], upto: int) -> None:
    s = spec("asha", gracePeriod=1, reductionFactor=3, iterations=1000)
    trials = [linear(f"t{k}", slope, upto) for k, slope in enumerate(slopes)]
    stopped = set(early_stops(s, trials))
    ranked = sorted(range(len(slopes)), key=lambda k: slopes[k])
    assert f"t{ranked[-1]}" not in stopped
    assert f"t{ranked[0]}" in stopped
    # Everything in the top third goes on.
    assert not stopped & {f"t{k}" for k in ranked[len(ranked) - len(ranked) // 3 :]}


def test_median_stops_a_trial_whose_best_is_below_the_peers_median() -> None:
    s = spec("median", gracePeriod=3, minTrials=3)
    peers = [linear(f"p{k}", 2.0 + k, 10, Phase.SUCCEEDED) for k in range(3)]
    assert early_stops(s, [*peers, linear("bad", 0.5, 5), linear("good", 4.0, 5)]) == ["bad"]


def test_median_respects_grace_period_and_min_trials() -> None:
    s = spec("median", gracePeriod=3, minTrials=3)
    peers = [linear(f"p{k}", 2.0 + k, 10, Phase.SUCCEEDED) for k in range(3)]
    assert early_stops(s, [*peers, linear("bad", 0.5, 2)]) == []  # within its grace period
    assert early_stops(s, [*peers[:2], linear("bad", 0.5, 5)]) == []  # two peers only


def test_median_compares_only_peers_that_reached_the_iteration() -> None:
    s = spec("median", gracePeriod=1, minTrials=1)
    short = [linear(f"p{k}", 100.0, 2, Phase.STOPPED) for k in range(3)]
    assert early_stops(s, [*short, linear("far", 1.0, 5)]) == []


def test_median_in_min_mode() -> None:
    s = spec("median", mode="min", gracePeriod=1, minTrials=2)
    peers = [linear(f"p{k}", 1.0, 10, Phase.SUCCEEDED) for k in range(2)]
    assert early_stops(s, [*peers, linear("high", 3.0, 4), linear("low", 0.5, 4)]) == ["high"]


def test_plan_lists_early_stops_and_keeps_them_active_until_stopped() -> None:
    s = spec("asha", gracePeriod=1, reductionFactor=3).model_copy(update={"parallelism": 9})
    trials = [linear(f"sw-{k}", float(k), 9) for k in range(9)]
    trials = [
        TrialState(t.name, k, 0, {}, t.phase, history=t.history) for k, t in enumerate(trials)
    ]
    p = plan(s, "sw", trials)
    assert p.stop == [f"sw-{k}" for k in range(6)]
    assert p.create == []  # the trials asked to stop still hold their slots
