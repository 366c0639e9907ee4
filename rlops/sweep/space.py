"""The search space: axes of parameters, grid points and seeded random points.

An axis is one parameter, or one `paired` group whose values move together. A grid
is the Cartesian product of the axes' values in declared order (the last axis varies
fastest); a random configuration is a pure function of (sweep seed, index), so it
can be recomputed by anyone at any time without stored state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlops.api import Distribution, SearchAlgorithm, SweepSpec
from rlops.sweep.distributions import ENUMERATED, enumerate_values, parameter_rng, sample


@dataclass(frozen=True)
class Axis:
    """One dimension of the search: a parameter, or a paired group of grid parameters."""

    keys: tuple[str, ...]
    dist: Distribution | None  # None for a paired group
    rows: tuple[tuple[Any, ...], ...]  # the values of an enumerable axis, one tuple per point

    @property
    def name(self) -> str:
        return "+".join(self.keys)

    @property
    def enumerable(self) -> bool:
        return self.dist is None or self.dist.type in ENUMERATED

    def point(self, row: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.keys, row, strict=True))

    def sample(self, seed: int, index: int) -> dict[str, Any]:
        rng = parameter_rng(seed, index, self.name)
        if self.dist is None:
            return self.point(rng.choice(self.rows))
        return {self.keys[0]: sample(self.dist, rng)}


def axes(spec: SweepSpec) -> list[Axis]:
    """The axes of a sweep in declared order; a paired group sits where its first key is."""
    group_of = {key: tuple(group) for group in spec.paired for key in group}
    out: list[Axis] = []
    placed: set[tuple[str, ...]] = set()
    for key, dist in spec.parameters.items():
        group = group_of.get(key)
        if group is None:
            rows = tuple((v,) for v in dist.values or []) if dist.type in ENUMERATED else ()
            out.append(Axis((key,), dist, rows))
        elif group not in placed:
            placed.add(group)
            columns = [enumerate_values(spec.parameters[k]) for k in group]
            out.append(Axis(group, None, tuple(zip(*columns, strict=False))))
    return out


def grid_size(space: Sequence[Axis]) -> int:
    """How many points the grid of these axes has."""
    for axis in space:
        if not axis.enumerable:
            raise ValueError(
                f"parameters.{axis.name}: {axis.dist.type.value if axis.dist else '?'} cannot "
                "be enumerated by algorithm grid; use grid/choice values, or random or tpe"
            )
    return math.prod(len(axis.rows) for axis in space)


def grid_point(space: Sequence[Axis], index: int) -> dict[str, Any]:
    """The `index`-th point of the grid, decoded in mixed radix (last axis fastest)."""
    point: dict[str, Any] = {}
    digits = []
    for axis in reversed(space):
        index, digit = divmod(index, len(axis.rows))
        digits.append((axis, digit))
    for axis, digit in reversed(digits):
        point.update(axis.point(axis.rows[digit]))
    return point


def random_point(spec: SweepSpec, space: Sequence[Axis], index: int) -> dict[str, Any]:
    """The `index`-th random configuration: a pure function of (spec.seed, index)."""
    point: dict[str, Any] = {}
    for axis in space:
        point.update(axis.sample(spec.seed, index))
    return point


def configuration_count(spec: SweepSpec, space: Sequence[Axis]) -> int:
    """Configurations the sweep tries: the grid (capped by maxTrials), else maxTrials."""
    if spec.algorithm == SearchAlgorithm.GRID:
        size = grid_size(space)
        return size if spec.max_trials is None else min(size, spec.max_trials)
    if spec.max_trials is None:
        raise ValueError(f"maxTrials: required for algorithm {spec.algorithm.value}")
    return spec.max_trials
