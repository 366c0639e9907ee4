"""Population-based training in the engine: properties over random sweeps (the population
stays maxTrials, pauses come only from the bottom quantile of due trials, exploits copy only
from the top quantile, the same seed gives the same plans), explore's perturbations and
resamples, and the validation of `pbt`."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlops.api import Phase, SweepSpec, validate_manifest
from rlops.sweep import plan
from rlops.sweep.pbt import due, explore, perturb, quantiles
from tests.builders import sweep
from tests.sweep.simulation import Simulation, spec_of


def pbt_sweep(population: int, parallelism: int, seed: int, interval: int = 2) -> SweepSpec:
    builder = sweep()
    builder.set("spec.algorithm", "pbt")
    builder.set("spec.maxTrials", population)
    builder.set("spec.parallelism", parallelism)
    builder.set("spec.seed", seed)
    builder.set("spec.pbt", {"perturbationInterval": interval, "quantileFraction": 0.25})
    builder.template("checkpoint", {"frequency": 1})
    builder.param("config.training.lr", "loguniform", low=1e-4, high=1e-1)
    builder.param("config.training.gamma", "choice", values=[0.9, 0.95, 0.99])
    return spec_of(builder)


def quality(parameters: dict[str, Any], seed_index: int) -> float:
    """Best near lr 0.01 and gamma 0.99."""
    return -abs(parameters["config.training.lr"] - 0.01) * 100 + parameters["config.training.gamma"]


def simulate(spec: SweepSpec, world_seed: int) -> tuple[Simulation, list[Any]]:
    """Runs a PBT sweep to its end, checking every plan against what it was given."""
    sim = Simulation(spec, rng=random.Random(world_seed), objective=quality)
    for _ in range(400):
        observed = sim.observe()
        p = plan(spec, sim.name, observed)
        assert p == plan(spec, sim.name, observed), "a plan is a function of what it sees"
        bottom, top = quantiles(spec, observed)
        by_name = {t.name: t for t in observed}
        for name in p.pause:
            assert by_name[name] in bottom, f"{name} paused outside the bottom quantile"
            assert due(spec, by_name[name]), f"{name} paused before its interval"
        for e in p.exploit:
            assert e.name in p.resume
            assert by_name[e.name].phase == Phase.PAUSED
            assert e.exploit.source in {t.name for t in top}, "exploit from outside the top"
            assert e.exploit.source != e.name
            assert e.spec.checkpoint.exploit is not None
            assert e.spec.checkpoint.exploit.source == f"../{e.exploit.source}"
            for key, value in e.exploit.parameters.items():
                assert e.spec.config["training"][key.rsplit(".", 1)[1]] == value
        sim.plans.append(p)
        sim.apply(p)
        assert len(sim.trials) <= (spec.max_trials or 0), "the population grew"
        active = [t for t in sim.trials.values() if t.active]
        assert len(active) <= spec.parallelism
        if p.done:
            return sim, sim.plans
        sim.advance()
    raise AssertionError("not done")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    population=st.integers(2, 10),
    parallelism=st.integers(1, 6),
    seed=st.integers(0, 5),
    world=st.integers(0, 1000),
)
def test_population_quantiles_and_replay(
    population: int, parallelism: int, seed: int, world: int
) -> None:
    spec = pbt_sweep(population, parallelism, seed)
    sim, plans = simulate(spec, world)
    assert len(sim.created) == population  # the population is maxTrials, created once each
    assert len(set(sim.created)) == population
    assert all(t.phase.finished for t in sim.trials.values())
    again, replayed = simulate(spec, world)
    assert replayed == plans  # same seed, same outcomes: the same plans, exploits included
    assert again.trials == sim.trials


def test_exploits_happen_and_are_recorded() -> None:
    spec = pbt_sweep(8, 4, seed=1)
    sim, plans = simulate(spec, 3)
    exploits = [e for p in plans for e in p.exploit]
    assert exploits, "a population of 8 over many intervals exploited nothing"
    for e in exploits:
        trial = sim.trials[e.name]
        assert e.exploit in trial.exploits
    exploited = [t for t in sim.trials.values() if t.exploits]
    for t in exploited:
        assert dict(t.parameters) == t.exploits[-1].parameters
        iterations = [e.iteration for e in t.exploits]
        assert iterations == sorted(iterations)
    top = plans[-1].status.top
    assert any(s.exploits for s in top) or not any(sim.trials[s.name].exploits for s in top)


def test_only_due_trials_pause() -> None:
    spec = pbt_sweep(4, 4, seed=0, interval=5)
    sim = Simulation(spec, objective=quality)
    sim.apply(sim.plan())
    for _ in range(4):  # four iterations each: none is due yet
        for t in list(sim.trials.values()):
            sim._set(t.name, phase=Phase.RUNNING)
            sim._progress(sim.trials[t.name])
            sim._set(t.name, phase=Phase.RUNNING)
    assert plan(spec, "sw", sim.observe()).pause == []


@pytest.mark.parametrize("seed", range(20))
def test_explore_perturbs_within_bounds_or_resamples(seed: int) -> None:
    spec = pbt_sweep(4, 2, seed=0)
    rng = random.Random(seed)
    before = {"config.training.lr": 0.01, "config.training.gamma": 0.95}
    after = explore(spec, before, rng)
    lr = after["config.training.lr"]
    assert 1e-4 <= lr <= 1e-1
    assert after["config.training.gamma"] in (0.9, 0.95, 0.99)
    assert after["config.training.lr"] != 0.01 or after["config.training.gamma"] != 0.95


def test_perturb_factors_neighbours_and_clipping() -> None:
    spec = pbt_sweep(4, 2, seed=0)
    lr, gamma = spec.parameters["config.training.lr"], spec.parameters["config.training.gamma"]
    seen = sorted({perturb(lr, 0.01, random.Random(s)) for s in range(30)})
    assert seen == [pytest.approx(0.008), pytest.approx(0.012)]
    clipped = sorted({perturb(lr, 0.1, random.Random(s)) for s in range(30)})
    assert clipped == [pytest.approx(0.08), 0.1]
    neighbours = {perturb(gamma, 0.95, random.Random(s)) for s in range(30)}
    assert neighbours == {0.9, 0.99}
    assert {perturb(gamma, 0.99, random.Random(s)) for s in range(30)} == {0.95, 0.99}


def test_validation_names_the_fields() -> None:
    builder = sweep()
    builder.set("spec.algorithm", "pbt")
    builder.set("spec.maxTrials", 1)
    builder.set("spec.seedsPerTrial", 2)
    builder.set("spec.pbt", {"perturbationInterval": 0, "quantileFraction": 0.7})
    errors = {e.path: e.message for e in validate_manifest(builder.obj())}
    assert "spec.pbt.perturbationInterval" in errors
    assert "spec.pbt.quantileFraction" in errors
    assert "spec.parameters" in errors
    assert errors["spec.maxTrials"].startswith("algorithm pbt needs a population")
    assert errors["spec.seedsPerTrial"] == "must be 1 with algorithm pbt"
    assert "checkpoint every 1..0" in errors["spec.template.checkpoint.frequency"]
    other = sweep().set("spec.pbt", {"perturbationInterval": 3})
    other.set("spec.algorithm", "random").set("spec.maxTrials", 2)
    other.param("config.training.lr", "uniform", low=0.1, high=0.2)
    assert [e.path for e in validate_manifest(other.obj())] == ["spec.pbt"]
