"""Sampling one parameter from its distribution, deterministically for a seeded generator."""

from __future__ import annotations

import math
import random
from statistics import NormalDist
from typing import Any

from rlops.api import Distribution, DistributionType

ENUMERATED = frozenset({DistributionType.GRID, DistributionType.CHOICE})
INTEGER = frozenset({DistributionType.INT, DistributionType.RANDINT})


def parameter_rng(seed: int, index: int, key: str) -> random.Random:
    """The generator of one parameter of one configuration.

    Seeding with a string is deterministic across processes (it is hashed with
    SHA-512, not with Python's randomised hash), and one generator per key keeps the
    other parameters' samples unchanged when a parameter is added to a sweep.
    """
    return random.Random(f"rlops/{seed}/{index}/{key}")


def sample(dist: Distribution, rng: random.Random) -> Any:
    """One value of `dist`: integers for int/randint, a listed value for grid/choice."""
    t = dist.type
    if t in ENUMERATED:
        return rng.choice(_values(dist))
    if t in INTEGER:
        first, last, step = integer_bounds(dist)
        return first + step * rng.randint(0, (last - first) // step)
    if t == DistributionType.UNIFORM:
        low, high = _bounds(dist)
        return quantise(dist, rng.uniform(low, high))
    if t == DistributionType.LOGUNIFORM:
        low, high = _bounds(dist)
        return quantise(dist, math.exp(rng.uniform(math.log(low), math.log(high))))
    if t == DistributionType.NORMAL:
        mean, std = _moments(dist)
        return quantise(dist, rng.gauss(mean, std))
    if t == DistributionType.TRUNCNORMAL:
        return quantise(dist, _truncated_normal(dist, rng))
    raise ValueError(f"type: {t!r} is not a distribution; valid: {', '.join(DistributionType)}")


def enumerate_values(dist: Distribution) -> list[Any]:
    """The values a grid enumerates: `values` of grid and choice."""
    if dist.type not in ENUMERATED:
        raise ValueError(f"type: {dist.type.value} cannot be enumerated; only grid and choice")
    return _values(dist)


def quantise(dist: Distribution, value: float) -> float:
    """`value` rounded to a multiple of `step` (counted from `low` when bounded), kept in bounds."""
    step = dist.step
    if step is None:
        return value
    origin = dist.low if dist.low is not None else 0.0
    snapped = origin + round((value - origin) / step) * step
    if dist.high is not None and snapped > dist.high:
        snapped -= step
    if dist.low is not None and snapped < dist.low:
        snapped = dist.low
    # Twelve significant digits drop the binary noise of k * step (0.30000000000000004).
    return float(f"{snapped:.12g}")


def integer_bounds(dist: Distribution) -> tuple[int, int, int]:
    """Inclusive integer bounds and step of an int/randint distribution."""
    low, high = _bounds(dist)
    step = max(1, round(dist.step)) if dist.step is not None else 1
    return math.ceil(low), math.floor(high), step


def normal_bounds(dist: Distribution) -> tuple[float, float]:
    """The interval a normal is searched in by TPE: its bounds, or mean +- 3 std."""
    if dist.type == DistributionType.TRUNCNORMAL:
        return _bounds(dist)
    mean, std = _moments(dist)
    return mean - 3 * std, mean + 3 * std


def _truncated_normal(dist: Distribution, rng: random.Random) -> float:
    """Inverse-CDF sampling: exact, and never loops when the bounds lie far in a tail."""
    mean, std = _moments(dist)
    low, high = _bounds(dist)
    normal = NormalDist(mean, std)
    lo, hi = normal.cdf(low), normal.cdf(high)
    if hi - lo < 1e-12:  # Both bounds far in one tail: the density is flat enough there.
        return rng.uniform(low, high)
    u = rng.uniform(lo, hi)
    u = min(max(u, 1e-300), 1 - 1e-16)
    return min(max(normal.inv_cdf(u), low), high)


def _values(dist: Distribution) -> list[Any]:
    if not dist.values:
        raise ValueError(f"values: a non-empty list is required for {dist.type.value}")
    return list(dist.values)


def _bounds(dist: Distribution) -> tuple[float, float]:
    if dist.low is None or dist.high is None:
        raise ValueError(f"low, high: required for {dist.type.value}")
    return dist.low, dist.high


def _moments(dist: Distribution) -> tuple[float, float]:
    if dist.mean is None or dist.std is None:
        raise ValueError(f"mean, std: required for {dist.type.value}")
    return dist.mean, dist.std
