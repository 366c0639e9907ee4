"""Sampling every distribution type: bounds, integer inclusivity, quantisation by step,
truncated normals (also far in a tail), shape checks, and determinism per (seed, index, key)."""

from __future__ import annotations

import math
import statistics

from rlops.api import Distribution
from rlops.sweep.distributions import parameter_rng, quantise, sample


def draws(n: int = 2000, **fields: object) -> list[float]:
    dist = Distribution.model_validate(fields)
    return [sample(dist, parameter_rng(0, i, "p")) for i in range(n)]


def test_uniform_within_bounds_and_spread() -> None:
    xs = draws(type="uniform", low=-2.0, high=3.0)
    assert all(-2.0 <= x <= 3.0 for x in xs)
    assert abs(statistics.mean(xs) - 0.5) < 0.15


def test_loguniform_is_uniform_in_log_space() -> None:
    xs = draws(type="loguniform", low=1e-5, high=1e-1)
    assert all(1e-5 <= x <= 1e-1 for x in xs)
    logs = [math.log10(x) for x in xs]
    assert abs(statistics.mean(logs) - (-3.0)) < 0.15
    assert sum(1 for x in xs if x < 1e-3) / len(xs) > 0.4  # half the decades, half the mass


def test_int_and_randint_include_both_bounds() -> None:
    for kind in ("int", "randint"):
        xs = draws(type=kind, low=1, high=4)
        assert set(xs) == {1, 2, 3, 4}
        assert all(isinstance(x, int) for x in xs)


def test_int_with_step_counts_from_low() -> None:
    assert set(draws(type="int", low=16, high=64, step=16)) == {16, 32, 48, 64}


def test_uniform_with_step_is_quantised_and_in_bounds() -> None:
    xs = draws(type="uniform", low=0.0, high=1.0, step=0.25)
    assert set(xs) == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_quantise_drops_binary_noise_and_keeps_bounds() -> None:
    dist = Distribution.model_validate({"type": "uniform", "low": 0.0, "high": 0.35, "step": 0.1})
    assert quantise(dist, 0.29) == 0.3
    assert quantise(dist, 0.349) == 0.3  # 0.4 would leave the bounds


def test_normal_has_its_moments() -> None:
    xs = draws(4000, type="normal", mean=10.0, std=2.0)
    assert abs(statistics.mean(xs) - 10.0) < 0.15
    assert abs(statistics.stdev(xs) - 2.0) < 0.15


def test_truncnormal_stays_in_bounds_and_keeps_its_shape() -> None:
    xs = draws(4000, type="truncnormal", mean=0.0, std=1.0, low=-1.0, high=2.0)
    assert all(-1.0 <= x <= 2.0 for x in xs)
    n = statistics.NormalDist()
    expected_mean = (n.pdf(-1.0) - n.pdf(2.0)) / (n.cdf(2.0) - n.cdf(-1.0))
    assert abs(statistics.mean(xs) - expected_mean) < 0.05
    near_mean = sum(1 for x in xs if abs(x) < 0.5) / len(xs)
    near_edge = sum(1 for x in xs if x > 1.5) / len(xs)
    assert near_mean > 3 * near_edge


def test_truncnormal_far_in_a_tail_terminates_in_bounds() -> None:
    xs = draws(200, type="truncnormal", mean=0.0, std=1.0, low=40.0, high=41.0)
    assert all(40.0 <= x <= 41.0 for x in xs)


def test_choice_and_grid_sample_listed_values_including_lists() -> None:
    xs = draws(500, type="choice", values=[[64, 64], [256, 256], "x"])
    assert {repr(x) for x in xs} == {"[64, 64]", "[256, 256]", "'x'"}


def test_same_seed_index_key_same_value_and_others_differ() -> None:
    dist = Distribution.model_validate({"type": "uniform", "low": 0.0, "high": 1.0})
    one = sample(dist, parameter_rng(3, 7, "lr"))
    assert sample(dist, parameter_rng(3, 7, "lr")) == one
    others = {
        sample(dist, parameter_rng(4, 7, "lr")),
        sample(dist, parameter_rng(3, 8, "lr")),
        sample(dist, parameter_rng(3, 7, "gamma")),
    }
    assert one not in others and len(others) == 3
