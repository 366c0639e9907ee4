"""Early stopping from intermediate results: the median rule and ASHA, both stateless.

Every plan looks at each Running trial's history afresh:

- median: a trial at iteration t >= gracePeriod is stopped when the best metric it
  reached so far is worse than the median of the other trials' running averages at
  t (over the trials whose history reaches t, at least minTrials of them).
- asha: rungs sit at gracePeriod * reductionFactor^k below maxIterations (default:
  the template's stop.iterations). A trial is judged at the highest rung it reached,
  on the first metric it reported at or after that rung, against every trial that
  reached the rung so far (at least minTrials): unless it is in the top
  1/reductionFactor (at or above the (1 - 1/rf) quantile) it is stopped. Judging
  happens as trials arrive, never waiting for a rung to fill (asynchronous); being
  stateless, a trial waiting between rungs can still be stopped when better peers
  arrive at its rung later.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from rlops.api import EarlyStopping, EarlyStoppingType, Phase, SweepSpec
from rlops.sweep.trials import TrialState


@dataclass(frozen=True)
class Curve:
    """A trial's history as sorted iterations and its metric, higher always better."""

    name: str
    iterations: list[int]
    scores: list[float]

    @property
    def last(self) -> int:
        return self.iterations[-1]

    def first_at_or_after(self, iteration: float) -> float | None:
        k = bisect.bisect_left(self.iterations, iteration)
        return self.scores[k] if k < len(self.scores) else None


def early_stops(spec: SweepSpec, trials: Sequence[TrialState]) -> list[str]:
    """Names of the Running trials to stop now, in the order of `trials`."""
    rule = spec.early_stopping
    if rule is None:
        return []
    sign = 1.0 if spec.objective.mode == "max" else -1.0
    curves = {t.name: _curve(t, sign) for t in trials if t.history}
    candidates = [
        curves[t.name]
        for t in trials
        if t.phase == Phase.RUNNING and not t.stop_requested and t.name in curves
    ]
    if not candidates:
        return []
    if rule.type == EarlyStoppingType.MEDIAN:
        return _median_stops(rule, candidates, list(curves.values()))
    max_t = rule.max_iterations or spec.template.stop.iterations
    return _asha_stops(rule, candidates, list(curves.values()), max_t)


def _curve(trial: TrialState, sign: float) -> Curve:
    points = sorted(trial.history)
    return Curve(trial.name, [it for it, _ in points], [sign * m for _, m in points])


def _median_stops(rule: EarlyStopping, candidates: list[Curve], curves: list[Curve]) -> list[str]:
    averages: dict[int, list[tuple[str, float]]] = {}  # iteration -> (trial, running average)
    stops = []
    for curve in candidates:
        t = curve.last
        if t < rule.grace_period:
            continue
        if t not in averages:
            averages[t] = [
                (c.name, avg) for c in curves if (avg := _running_average(c, t)) is not None
            ]
        peers = [avg for name, avg in averages[t] if name != curve.name]
        if len(peers) >= rule.min_trials and max(curve.scores) < statistics.median(peers):
            stops.append(curve.name)
    return stops


def _running_average(curve: Curve, t: int) -> float | None:
    """Mean score over iterations <= t, for a curve that reached t; else None."""
    if curve.last < t:
        return None
    k = bisect.bisect_right(curve.iterations, t)
    return sum(curve.scores[:k]) / k if k else None


def rungs(rule: EarlyStopping, max_t: int | None, reached: int) -> list[float]:
    """ASHA milestones, lowest first: below max_t, or up to the furthest iteration reached."""
    limit = max_t if max_t is not None else reached + 1
    out: list[float] = []
    rung = float(rule.grace_period)
    while rung < limit:
        out.append(rung)
        rung *= rule.reduction_factor
    return out


def _asha_stops(
    rule: EarlyStopping, candidates: list[Curve], curves: list[Curve], max_t: int | None
) -> list[str]:
    milestones = rungs(rule, max_t, max(c.last for c in curves))
    recorded: dict[float, list[float]] = {}
    stops = []
    for curve in candidates:
        reached = [r for r in milestones if curve.last >= r]
        if not reached:
            continue
        rung = reached[-1]
        if rung not in recorded:
            recorded[rung] = [
                v for c in curves if c.last >= rung and (v := c.first_at_or_after(rung)) is not None
            ]
        values = recorded[rung]
        own = curve.first_at_or_after(rung)
        if own is None or len(values) < rule.min_trials:
            continue
        if own < _quantile(values, 1 - 1 / rule.reduction_factor):
            stops.append(curve.name)
    return stops


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
