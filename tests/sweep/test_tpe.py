"""TPE through Optuna, rebuilt from the trials on every plan: deterministic for a seed, distinct
parallel suggestions, learning toward the optimum, every distribution type, the history cap."""

from __future__ import annotations

import logging
import random

from rlops.api import Phase, SweepSpec
from rlops.sweep import TrialState, plan
from rlops.sweep.tpe import HISTORY_LIMIT, STARTUP
from tests.builders import sweep
from tests.sweep.simulation import Simulation, spec_of

X = "config.training.lr"


def tpe(seed: int = 0, parallelism: int = 1, trials: int = 40, algorithm: str = "tpe") -> SweepSpec:
    builder = sweep().param(X, "uniform", low=0.0, high=1.0)
    builder.set("spec.algorithm", algorithm).set("spec.maxTrials", trials)
    return spec_of(builder.set("spec.seed", seed).set("spec.parallelism", parallelism))


def peak(params: dict[str, object], seed: int) -> float:
    return -((float(params[X]) - 0.7) ** 2)  # type: ignore[arg-type]


def explored(spec: SweepSpec, rng_seed: int = 1) -> list[float]:
    sim = Simulation(spec, rng=random.Random(rng_seed), objective=peak)
    sim.run(2000)
    by_index = sorted(sim.trials.values(), key=lambda t: t.index)
    return [float(t.parameters[X]) for t in by_index]


def completed(n: int, value: object = lambda i: float(i)) -> list[TrialState]:
    return [
        TrialState(f"sw-{i}", i, 0, {X: (i % 97) / 97}, Phase.SUCCEEDED, objective=value(i))  # type: ignore[operator]
        for i in range(n)
    ]


def test_same_seed_same_sweep_other_seed_other_sweep() -> None:
    first = explored(tpe(seed=3, parallelism=2, trials=25))
    assert explored(tpe(seed=3, parallelism=2, trials=25)) == first
    assert explored(tpe(seed=4, parallelism=2, trials=25)) != first


def test_plan_is_a_pure_function_of_the_trials() -> None:
    spec, trials = tpe(parallelism=4), completed(STARTUP + 5)
    one = [t.parameters for t in plan(spec, "sw", trials).create]
    assert [t.parameters for t in plan(spec, "sw", trials).create] == one
    assert len({p[X] for p in one}) == 4  # parallel asks are kept apart


def test_tpe_concentrates_near_the_optimum_more_than_random() -> None:
    later = slice(STARTUP, None)
    tpe_error = [abs(x - 0.7) for x in explored(tpe())[later]]
    random_error = [abs(x - 0.7) for x in explored(tpe(algorithm="random"))[later]]
    assert sum(tpe_error) / len(tpe_error) < 0.6 * sum(random_error) / len(random_error)


def test_every_distribution_type_round_trips() -> None:
    builder = sweep().set("spec.algorithm", "tpe").set("spec.maxTrials", 30)
    builder.param("config.training.gamma", "normal", mean=0.95, std=0.01)
    builder.param("config.training.lambda_", "truncnormal", mean=0.9, std=0.1, low=0.8, high=1.0)
    builder.param("config.training.lr", "loguniform", low=1e-5, high=1e-2, step=1e-5)
    builder.param("config.training.num_epochs", "randint", low=1, high=9, step=2)
    builder.param("config.training.minibatch_size", "choice", values=[32, 64])
    builder.param("config.rl_module.model_config", "grid", values=[{"a": [1]}, {"a": [2, 2]}])
    spec = spec_of(builder.set("spec.parallelism", 3))
    sim = Simulation(
        spec, rng=random.Random(2), objective=lambda p, s: float(p["config.training.num_epochs"])
    )
    sim.run(2000)
    for t in sim.trials.values():
        p = t.parameters
        assert 0.8 <= p["config.training.lambda_"] <= 1.0
        assert 1e-5 <= p["config.training.lr"] <= 1e-2
        assert p["config.training.num_epochs"] in (1, 3, 5, 7, 9)
        assert p["config.training.minibatch_size"] in (32, 64)
        assert p["config.rl_module.model_config"] in ({"a": [1]}, {"a": [2, 2]})
    learnt = [
        t.parameters["config.training.num_epochs"] for t in sim.trials.values() if t.index >= 20
    ]
    assert sum(learnt) / len(learnt) > 5  # mean of the uniform prior


def test_learns_from_the_most_recent_history_only() -> None:
    spec = tpe(trials=HISTORY_LIMIT + 50)
    trials = completed(HISTORY_LIMIT + 20)
    base = plan(spec, "sw", trials).create[0].parameters

    def with_best(index: int) -> dict[str, object]:
        changed = list(trials)
        changed[index] = TrialState(
            f"sw-{index}", index, 0, {X: 0.0}, Phase.SUCCEEDED, objective=1e9
        )
        return dict(plan(spec, "sw", changed).create[0].parameters)

    assert with_best(0) == base  # beyond the window: not learnt from
    assert with_best(len(trials) - 100) != base  # within it: a new best changes the suggestion


def test_asking_logs_nothing_and_leaves_optuna_logging_as_it_was() -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    optuna_logger.addHandler(handler)
    try:
        created = plan(tpe(parallelism=3), "sw", completed(STARTUP + 2)).create
    finally:
        optuna_logger.removeHandler(handler)
    assert len(created) == 3
    assert [r.getMessage() for r in records] == []
    assert optuna_logger.level == level
