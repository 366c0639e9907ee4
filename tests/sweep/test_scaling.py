"""How a plan's work grows with the number of observed trials, counted rather than timed.

A driver plans on every reconcile, so the work of `plan` must not grow by a Python
function call per observed trial: the trials are walked in tight loops, new random
or grid configurations are computed only for the new indices, TPE learns from a
bounded history, and early stopping computes each statistic in one pass. These
tests count the Python calls `plan` makes (`sys.setprofile`, deterministic) with
1,000 and 10,000 trials and require them to be (nearly) the same. One CPU-time
guard follows, generous on purpose (a shared, loaded machine): it catches a return
to quadratic work, it is not a benchmark (bench/bench_engine.py is).
"""

from __future__ import annotations

import inspect
import random
import statistics
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from rlops.api import Backend, Phase, SearchAlgorithm, SweepSpec
from rlops.sweep import TrialState, plan
from rlops.sweep.space import axes, grid_point, random_point
from tests.builders import sweep
from tests.sweep.simulation import spec_of

PARALLELISM = 100
# Calls that may differ between 1,000 and 10,000 trials (TPE's history and a few
# lookups fill differently); one call per trial would add 9,000.
SLACK = 300


def sweep_spec(algorithm: str, early_stopping: str | None = None) -> SweepSpec:
    builder = sweep().set("spec.algorithm", algorithm).set("spec.maxTrials", 100_000)
    builder.set("spec.parallelism", PARALLELISM).template("stop.iterations", 100)
    if algorithm == "grid":
        builder.param("config.training.lr", "grid", values=[1e-5 * 2**i for i in range(100)])
    else:
        builder.param("config.training.lr", "loguniform", low=1e-5, high=1e-2)
    builder.param("config.training.gamma", "grid", values=[0.9 + 0.001 * i for i in range(100)])
    builder.param("config.training.minibatch_size", "choice", values=[32, 64, 128])
    if early_stopping:
        builder.set("spec.earlyStopping", {"type": early_stopping, "gracePeriod": 1})
    return spec_of(builder)


def observed(spec: SweepSpec, n: int, free: int) -> list[TrialState]:
    """n trials with the engine's own parameters: the last PARALLELISM - free running."""
    rng = random.Random(n)
    space = axes(spec)
    grid = spec.algorithm == SearchAlgorithm.GRID
    trials = []
    for i in range(n):
        running = i >= n - (PARALLELISM - free)
        phase = Phase.RUNNING if running else rng.choice([Phase.SUCCEEDED, Phase.STOPPED])
        quality = rng.random()
        trials.append(
            TrialState(
                name=f"sw-{i}",
                index=i,
                seed_index=0,
                parameters=grid_point(space, i) if grid else random_point(spec, space, i),
                phase=phase,
                backend=Backend.KUBERNETES,
                objective=None if running else quality,
                history=tuple((it, quality * it) for it in range(1, 11)),
            )
        )
    return trials


def python_calls(action: Callable[[], Any]) -> int:
    """Python function calls made by `action` (generator resumptions left out)."""
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call" and not frame.f_code.co_flags & inspect.CO_GENERATOR:
            calls += 1

    sys.setprofile(count)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


CASES = [
    ("grid", None, 0),
    ("grid", None, 10),
    ("random", None, 0),
    ("random", None, 10),
    ("tpe", None, 10),
    ("random", "median", 0),
    ("random", "asha", 0),
]


@pytest.mark.parametrize(("algorithm", "rule", "free"), CASES)
def test_a_plan_makes_no_python_call_per_observed_trial(
    algorithm: str, rule: str | None, free: int
) -> None:
    spec = sweep_spec(algorithm, rule)
    counted = {}
    for n in (1_000, 10_000):
        trials = observed(spec, n, free)
        result = plan(spec, "sw", trials)  # warm: imports and caches outside the count
        assert len(result.create) == free
        if rule is not None:
            assert result.stop, "early stopping judged nobody: the case measures nothing"
        counted[n] = python_calls(lambda: plan(spec, "sw", trials))  # noqa: B023
    assert counted[10_000] <= counted[1_000] + SLACK, counted


def test_new_random_configurations_are_sampled_for_the_new_indices_only() -> None:
    spec = sweep_spec("random")
    trials = observed(spec, 10_000, free=10)
    sampled: list[int] = []

    def count(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is random_point.__code__:
            sampled.append(frame.f_locals["index"])

    sys.setprofile(count)
    try:
        result = plan(spec, "sw", trials)
    finally:
        sys.setprofile(None)
    assert sorted(sampled) == [p.index for p in result.create] == list(range(10_000, 10_010))


def test_plan_at_10000_trials_stays_far_below_a_generous_cpu_bound() -> None:
    """CPU time, not wall time (waiting for a core does not count); the bench measures
    a few milliseconds, so 250 ms only trips on work that grows out of proportion."""
    spec = sweep_spec("random", "median")
    trials = observed(spec, 10_000, free=10)
    cpu = []
    for _ in range(3):
        start = time.process_time()
        plan(spec, "sw", trials)
        cpu.append(time.process_time() - start)
    assert statistics.median(cpu) < 0.250
