"""Search spaces: a grid covers exactly its product in declared order, paired keys are zipped,
maxTrials caps the grid, and random points are pure functions of (seed, index)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from rlops.api import SearchAlgorithm
from rlops.sweep.space import axes, configuration_count, grid_point, random_point
from tests.builders import SweepBuilder, sweep
from tests.sweep.simulation import spec_of


def grid_sweep(**values: list[object]) -> SweepBuilder:
    builder = sweep()
    for key, vals in values.items():
        builder.param(f"config.training.{key}", "grid", values=vals)
    return builder


def all_points(builder: SweepBuilder) -> list[dict[str, object]]:
    spec = spec_of(builder)
    space = axes(spec)
    return [grid_point(space, i) for i in range(configuration_count(spec, space))]


def test_grid_is_the_product_in_declared_order_last_fastest() -> None:
    points = all_points(grid_sweep(lr=[1, 2], gamma=[10, 20, 30]))
    assert [(p["config.training.lr"], p["config.training.gamma"]) for p in points] == list(
        itertools.product([1, 2], [10, 20, 30])
    )


def test_paired_keys_are_zipped_not_crossed() -> None:
    builder = grid_sweep(lr=[1, 2, 3], gamma=[10, 20, 30], lambda_=[0, 5])
    builder.set("spec.paired", [["config.training.lr", "config.training.gamma"]])
    points = all_points(builder)
    assert len(points) == 6
    pairs = {(p["config.training.lr"], p["config.training.gamma"]) for p in points}
    assert pairs == {(1, 10), (2, 20), (3, 30)}


def test_max_trials_caps_the_grid() -> None:
    builder = grid_sweep(lr=[1, 2, 3], gamma=[10, 20, 30]).set("spec.maxTrials", 4)
    assert len(all_points(builder)) == 4


def test_no_parameters_is_one_configuration() -> None:
    assert all_points(sweep()) == [{}]


@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=4),
    st.booleans(),
)
def test_grid_covers_exactly_its_product(sizes: list[int], pair_first_two: bool) -> None:
    values = {f"k{i}": [f"{i}-{j}" for j in range(n)] for i, n in enumerate(sizes)}
    builder = grid_sweep(**values)
    expected = list(itertools.product(*values.values()))
    keys = [f"config.training.k{i}" for i in range(len(sizes))]
    if pair_first_two and len(sizes) >= 2:
        n = sizes[0]
        builder.param(keys[1], "grid", values=[f"1-{j}" for j in range(n)])
        builder.set("spec.paired", [keys[:2]])
        expected = [
            (f"0-{j}", f"1-{j}", *rest)
            for j in range(n)
            for rest in itertools.product(*list(values.values())[2:])
        ]
    points = all_points(builder)
    assert sorted(tuple(p[k] for k in keys) for p in points) == sorted(expected)
    assert len(points) == len(expected)


def test_random_points_are_pure_functions_of_seed_and_index() -> None:
    builder = sweep().param("config.training.lr", "loguniform", low=1e-5, high=1e-2)
    builder.param("config.training.gamma", "choice", values=[0.9, 0.99])
    builder.set("spec.algorithm", "random").set("spec.maxTrials", 10)
    spec = spec_of(builder)
    assert spec.algorithm == SearchAlgorithm.RANDOM
    space = axes(spec)
    first = [random_point(spec, space, i) for i in range(10)]
    assert first == [random_point(spec, axes(spec), i) for i in range(10)]
    assert len({p["config.training.lr"] for p in first}) == 10
    other = spec.model_copy(update={"seed": 1})
    assert [random_point(other, space, i) for i in range(10)] != first


def test_random_keeps_paired_keys_together() -> None:
    builder = grid_sweep(lr=[1, 2, 3], gamma=[10, 20, 30])
    builder.set("spec.paired", [["config.training.lr", "config.training.gamma"]])
    builder.set("spec.algorithm", "random").set("spec.maxTrials", 30)
    spec = spec_of(builder)
    space = axes(spec)
    for i in range(30):
        p = random_point(spec, space, i)
        assert p["config.training.gamma"] == 10 * p["config.training.lr"]
