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

Histories are read as given, in increasing iteration order (as a run reports them);
nothing is copied, so a plan over 10,000 trials stays fast.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from operator import itemgetter

from rlops.api import EarlyStopping, EarlyStoppingType, Phase, SweepSpec
from rlops.sweep.trials import TrialState

History = tuple[tuple[int, float], ...]
_iteration = itemgetter(0)


def early_stops(spec: SweepSpec, trials: Sequence[TrialState]) -> list[str]:
    """Names of the Running trials to stop now, in the order of `trials`."""
    rule = spec.early_stopping
    if rule is None:
        return []
    candidates = [
        t for t in trials if t.phase == Phase.RUNNING and not t.stop_requested and t.history
    ]
    if not candidates:
        return []
    sign = 1.0 if spec.objective.mode == "max" else -1.0
    reported = [t for t in trials if t.history]
    if rule.type == EarlyStoppingType.MEDIAN:
        return _median_stops(rule, sign, candidates, reported)
    max_t = rule.max_iterations or spec.template.stop.iterations
    return _asha_stops(rule, sign, candidates, reported, max_t)


def _last(history: History) -> int:
    return history[-1][0]


def _median_stops(
    rule: EarlyStopping, sign: float, candidates: list[TrialState], reported: list[TrialState]
) -> list[str]:
    averages: dict[int, list[float]] = {}  # iteration -> running averages there, sorted
    stops = []
    for trial in candidates:
        t = _last(trial.history)
        if t < rule.grace_period:
            continue
        if t not in averages:
            averages[t] = sorted(
                avg for r in reported if (avg := _running_average(r.history, t, sign)) is not None
            )
        own = _running_average(trial.history, t, sign)
        assert own is not None  # the trial reached t
        everyone = averages[t]
        k = bisect.bisect_left(everyone, own)
        peers = everyone[:k] + everyone[k + 1 :]  # still sorted, without the trial itself
        best_so_far = max(sign * m for _, m in trial.history)
        if len(peers) >= rule.min_trials and best_so_far < _sorted_median(peers):
            stops.append(trial.name)
    return stops


def _sorted_median(ordered: list[float]) -> float:
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _running_average(history: History, t: int, sign: float) -> float | None:
    """Mean (signed) metric over iterations <= t, for a history that reached t; else None."""
    if _last(history) < t:
        return None
    k = bisect.bisect_right(history, t, key=_iteration)
    return sign * sum(m for _, m in history[:k]) / k if k else None


def _at_or_after(history: History, iteration: float) -> float | None:
    k = bisect.bisect_left(history, iteration, key=_iteration)
    return history[k][1] if k < len(history) else None


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
    rule: EarlyStopping,
    sign: float,
    candidates: list[TrialState],
    reported: list[TrialState],
    max_t: int | None,
) -> list[str]:
    milestones = rungs(rule, max_t, max(_last(r.history) for r in reported))
    cutoffs: dict[float, float | None] = {}  # rung -> the (1 - 1/rf) quantile there
    stops = []
    for trial in candidates:
        last = _last(trial.history)
        reached = [r for r in milestones if last >= r]
        if not reached:
            continue
        rung = reached[-1]
        if rung not in cutoffs:
            values = [
                sign * v
                for r in reported
                if _last(r.history) >= rung and (v := _at_or_after(r.history, rung)) is not None
            ]
            enough = len(values) >= rule.min_trials
            cutoffs[rung] = _quantile(values, 1 - 1 / rule.reduction_factor) if enough else None
        cutoff = cutoffs[rung]
        own = _at_or_after(trial.history, rung)
        if cutoff is not None and own is not None and sign * own < cutoff:
            stops.append(trial.name)
    return stops


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
