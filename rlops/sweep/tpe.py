"""Tree-structured Parzen Estimator suggestions through Optuna's ask/tell, rebuilt per plan.

No study outlives a call: the finished configurations (the most recent
`HISTORY_LIMIT` of them) and the active ones are added to a fresh in-memory study,
which then asks for the new configurations. Active configurations enter as RUNNING
trials so that the sampler's constant liar keeps parallel suggestions apart. Each
new configuration is asked with a sampler seeded by (sweep seed, index), so the
answer is a pure function of the trials observed.

The first `STARTUP` configurations are random points (as TPE itself would start),
which needs no study at all.

A plan's cost here is bounded whatever the number of trials: one study of at most
HISTORY_LIMIT + parallelism trials, then one ask per new configuration.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import TrialState as OptunaState
from optuna.trial import create_trial

from rlops.api import DistributionType, SweepSpec
from rlops.sweep.distributions import INTEGER, integer_bounds, normal_bounds, quantise
from rlops.sweep.space import Axis, random_point

STARTUP = 10
# Learning from more history than this costs more than it helps a plan that must stay fast.
HISTORY_LIMIT = 256


@dataclass(frozen=True)
class Observation:
    """One configuration as TPE sees it: its parameters and mean objective, if finished."""

    index: int
    parameters: dict[str, Any]
    state: OptunaState  # COMPLETE, FAIL or RUNNING
    value: float | None = None


def tpe_points(
    spec: SweepSpec, space: Sequence[Axis], seen: Sequence[Observation], indices: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """Parameters for each new configuration index, learnt from the configurations seen."""
    points: dict[int, dict[str, Any]] = {}
    pending: list[Observation] = []
    for index in indices:
        if index < STARTUP:
            points[index] = random_point(spec, space, index)
            pending.append(Observation(index, points[index], OptunaState.RUNNING))
    later = [i for i in indices if i not in points]
    if not later:
        return points
    distributions = {axis.name: _distribution(axis) for axis in space}
    finished = [o for o in seen if o.state != OptunaState.RUNNING][-HISTORY_LIMIT:]
    active = [o for o in seen if o.state == OptunaState.RUNNING]
    with _quiet():
        study = _study(spec)
        trials = [
            trial
            for o in (*finished, *active, *pending)
            if (trial := _trial(o, space, distributions)) is not None
        ]
        study.add_trials(trials)
        # The search space TPE models jointly: what Optuna would find by intersecting the
        # distributions of the finished trials (all of them share `distributions`).
        joint: dict[str, BaseDistribution] = {}
        if any(t.state == OptunaState.COMPLETE for t in trials):
            joint = {n: d for n, d in sorted(distributions.items()) if not d.single()}
        for index in later:
            study.sampler = _KnownSpaceTPE(
                joint, seed=_seed(spec.seed, index), n_startup_trials=STARTUP
            )
            asked = study.ask(distributions)
            points[index] = _decode(space, asked.params)
    return points


class _KnownSpaceTPE(optuna.samplers.TPESampler):
    """TPE told its joint search space instead of recomputing it from the trials on each ask.

    Optuna intersects the distributions of every finished trial on each ask (comparing
    them one by one, which dominated a plan); here every trial was added with the same
    distributions, so the intersection is known before the study exists.
    """

    def __init__(self, joint: dict[str, BaseDistribution], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._joint = joint

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._joint)


def _seed(seed: int, index: int) -> int:
    return (seed * 1_000_003 + index) % (2**32)


def _study(spec: SweepSpec) -> optuna.Study:
    direction = StudyDirection.MAXIMIZE if spec.objective.mode == "max" else StudyDirection.MINIMIZE
    storage = optuna.storages.InMemoryStorage()
    storage.create_new_study([direction], "rlops")
    return optuna.Study(study_name="rlops", storage=storage)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the per-study log line and the experimental-feature warnings of a plan."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        logger.setLevel(level)


def _distribution(axis: Axis) -> BaseDistribution:
    """Optuna's view of an axis.

    Enumerated axes become categorical over their value indices (values may be lists
    or mappings, which Optuna's categorical choices cannot hold). Floats are searched
    unquantised and quantised after asking. A normal is searched in mean +- 3 std; a
    truncated normal in its bounds; both uniformly (TPE replaces the prior with what
    it learns).
    """
    dist = axis.dist
    if dist is None or axis.enumerable:
        return CategoricalDistribution(tuple(range(len(axis.rows))))
    if dist.type in INTEGER:
        first, last, step = integer_bounds(dist)
        return IntDistribution(first, first + (last - first) // step * step, step=step)
    if dist.type in (DistributionType.NORMAL, DistributionType.TRUNCNORMAL):
        return FloatDistribution(*normal_bounds(dist))
    assert dist.low is not None and dist.high is not None
    return FloatDistribution(dist.low, dist.high, log=dist.type == DistributionType.LOGUNIFORM)


def _trial(
    o: Observation, space: Sequence[Axis], distributions: dict[str, BaseDistribution]
) -> optuna.trial.FrozenTrial | None:
    """The observation as an Optuna trial; None when its values lie outside the space."""
    params = {}
    for axis in space:
        value = _encode(axis, o.parameters, distributions[axis.name])
        if value is None:
            return None
        params[axis.name] = value
    if o.state == OptunaState.COMPLETE and (o.value is None or not math.isfinite(o.value)):
        return None
    return create_trial(
        state=o.state,
        value=o.value if o.state == OptunaState.COMPLETE else None,
        params=params,
        distributions=distributions,
    )


def _encode(axis: Axis, parameters: dict[str, Any], dist: BaseDistribution) -> Any:
    if any(key not in parameters for key in axis.keys):
        return None
    if isinstance(dist, CategoricalDistribution):
        row = tuple(parameters[key] for key in axis.keys)
        return axis.rows.index(row) if row in axis.rows else None
    value = parameters[axis.keys[0]]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(dist, IntDistribution):
        low, high, step = dist.low, dist.high, dist.step
        if value != int(value) or not low <= value <= high or (int(value) - low) % step:
            return None
        return int(value)
    assert isinstance(dist, FloatDistribution)
    # Values from random sampling may lie beyond a normal's 3 std: learn from the edge.
    return min(max(float(value), dist.low), dist.high)


def _decode(space: Sequence[Axis], params: dict[str, Any]) -> dict[str, Any]:
    point: dict[str, Any] = {}
    for axis in space:
        value = params[axis.name]
        if axis.dist is None or axis.enumerable:
            point.update(axis.point(axis.rows[value]))
        elif axis.dist.type in INTEGER:
            point[axis.keys[0]] = int(value)
        else:
            point[axis.keys[0]] = quantise(axis.dist, float(value))
    return point
