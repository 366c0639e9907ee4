"""Properties over many plan/observe rounds with random outcomes: never more active trials than
parallelism, never one name twice, retries within maxAttempts, stopped trials never restarted,
names as promised, counts that add up, and a grid run to its end covers its product."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlops.api import Phase, SweepSpec
from rlops.sweep import trial_name
from tests.builders import sweep
from tests.sweep.simulation import Simulation, spec_of

ACTIVE = (Phase.PENDING, Phase.SUBMITTED, Phase.RUNNING)


@st.composite
def sweeps(draw: st.DrawFn) -> SweepSpec:
    builder = sweep()
    algorithm = draw(st.sampled_from(["grid", "random", "tpe"]))
    builder.set("spec.algorithm", algorithm)
    builder.param(
        "config.training.lr", "grid", values=[0.1, 0.01, 0.001][: draw(st.integers(1, 3))]
    )
    builder.param("config.training.gamma", "choice", values=[0.9, 0.99])
    if algorithm != "grid":
        builder.param("config.training.lambda_", "uniform", low=0.9, high=1.0)
        builder.set("spec.maxTrials", draw(st.integers(1, 12 if algorithm == "random" else 6)))
    builder.set("spec.seed", draw(st.integers(0, 3)))
    builder.set("spec.parallelism", draw(st.integers(1, 5)))
    builder.set("spec.seedsPerTrial", draw(st.integers(1, 3)))
    builder.set("spec.maxAttempts", draw(st.integers(1, 3)))
    if draw(st.booleans()):
        builder.set("spec.maxFailedTrials", draw(st.integers(0, 3)))
    if draw(st.booleans()):
        kind, variant = draw(
            st.sampled_from([("median", "stopping"), ("asha", "stopping"), ("asha", "promotion")])
        )
        rule = {"type": kind, "variant": variant, "gracePeriod": 1, "minTrials": 2}
        builder.set("spec.earlyStopping", rule)
    if draw(st.booleans()):
        builder.set(
            "spec.placement",
            {
                "backend": "burst",
                "kubernetes": {"maxParallel": draw(st.integers(1, 3))},
                "slurm": {"cluster": "hpc"},
                "burstAfterSeconds": 1,
            },
        )
    return spec_of(builder)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps(), st.integers(0, 2**16), st.floats(0.0, 0.5))
def test_invariants_hold_over_random_rounds(spec: SweepSpec, seed: int, fail_rate: float) -> None:
    sim = Simulation(
        spec,
        rng=random.Random(seed),
        fail_rate=fail_rate,
        objective=lambda p, s: float(p["config.training.lr"]) * 100 + s,
    )
    stopped_for_good: set[str] = set()
    for _ in range(400):
        p = sim.plan()
        before = {t.name: t for t in sim.trials.values()}
        active_before = {n for n, t in before.items() if t.phase in ACTIVE}
        paused_before = {n for n, t in before.items() if t.phase == Phase.PAUSED}
        assert set(p.stop) <= active_before | paused_before, "stop only unfinished trials"
        assert not set(p.retry) & stopped_for_good
        assert not set(p.resume) & stopped_for_good
        assert all(not before[n].stop_requested for n in p.resume), "a stop is final"
        assert not set(p.resume) & set(p.stop)
        sim.apply(p)
        trials = sim.trials.values()
        assert sum(1 for t in trials if t.phase in ACTIVE) <= spec.parallelism
        assert all(t.attempts <= spec.max_attempts for t in trials)
        assert p.status.trials.total == len(sim.trials)
        c = p.status.trials
        assert c.pending + c.running + c.succeeded + c.failed + c.stopped + c.paused == c.total
        if p.done:
            assert not any(t.phase == Phase.PAUSED for t in trials), "done with a trial Paused"
        for t in p.create:
            assert t.name == trial_name("sw", t.index, t.seed_index, spec.seeds_per_trial)
        if p.done:
            break
        sim.advance()
        stopped_for_good |= {t.name for t in trials if t.phase == Phase.STOPPED}
        assert all(sim.trials[name].phase == Phase.STOPPED for name in stopped_for_good)
    else:
        raise AssertionError(f"not done after 400 rounds: {p.status.message}")
    assert len(sim.created) == len(set(sim.created))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**16))
def test_a_grid_run_to_its_end_covers_its_product(
    n_lr: int, seeds: int, parallelism: int, seed: int
) -> None:
    builder = sweep().param("config.training.lr", "grid", values=list(range(n_lr)))
    builder.param("config.training.gamma", "grid", values=[0.9, 0.99])
    builder.set("spec.seedsPerTrial", seeds).set("spec.parallelism", parallelism)
    sim = Simulation(spec_of(builder), rng=random.Random(seed), fail_rate=0.2)
    sim.run()
    points = {
        (t.parameters["config.training.lr"], t.parameters["config.training.gamma"], t.seed_index)
        for t in sim.trials.values()
    }
    assert points == {(lr, g, s) for lr in range(n_lr) for g in (0.9, 0.99) for s in range(seeds)}
    assert len(sim.trials) == n_lr * 2 * seeds
