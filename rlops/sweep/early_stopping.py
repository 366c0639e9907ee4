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

ASHA's promotion variant (`variant: promotion`, Li et al.'s Algorithm 2) pauses instead
of judging on the way: a trial runs to the rung its promotions so far allow (the first
rung, then the next after each promotion) and is paused there (`asha_promotions`). A
Paused trial is promoted (resumed from its checkpoint) when it is among the top
floor(n / reductionFactor) of the n trials that reached its rung, n >= minTrials;
promotions fill the free places before any new trial (the highest rung first). No trial
goes on for want of peers to be judged against; the price is a restart per promotion.
When no new trial can be created, the best trial at each rung may be promoted even
below the quota (so the last places are not left idle). Trials never promoted are
stopped when the sweep ends (by the engine).

Histories are read as given, in increasing iteration order (as a run reports them);
nothing is copied, and a history holding every iteration from 1 (as a run reports
them) is indexed by iteration directly (else searched by bisection), so a plan over
10,000 trials stays fast. Each statistic (the averages at an iteration, the cutoff of
a rung) is computed in one pass over the trials and shared by every candidate.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from operator import itemgetter

from rlops.api import AshaVariant, EarlyStopping, EarlyStoppingType, Phase, SweepSpec
from rlops.sweep.trials import TrialState

History = tuple[tuple[int, float], ...]
_iteration = itemgetter(0)
_metric = itemgetter(1)


def promotes(spec: SweepSpec) -> bool:
    """Whether the sweep's early stopping is ASHA's promotion variant (it pauses, not stops)."""
    rule = spec.early_stopping
    return (
        rule is not None
        and rule.type == EarlyStoppingType.ASHA
        and rule.variant == AshaVariant.PROMOTION
    )


def pause_point(spec: SweepSpec, promotions: int) -> int | None:
    """Under ASHA's promotion variant, the iteration at which a trial promoted `promotions`
    times reaches its rung and pauses (None: it runs to its budget, or no promotion variant).

    A driver that can tell a run where to end (the local runner sets the runtime's
    RLOPS_PAUSE_AT_ITERATION) spares the iterations a pause asked for afterwards costs;
    the plan's `pause` list stays the rule either way.
    """
    rule = spec.early_stopping
    if rule is None or not promotes(spec):
        return None
    max_t = rule.max_iterations or spec.template.stop.iterations
    rung = float(rule.grace_period)
    for _ in range(promotions):  # as `rungs` computes them, so both agree to the last bit
        rung *= rule.reduction_factor
    if max_t is not None and rung >= max_t:
        return None
    return math.ceil(rung)


def early_stops(spec: SweepSpec, trials: Sequence[TrialState]) -> list[str]:
    """Names of the Running trials to stop now, in the order of `trials`."""
    rule = spec.early_stopping
    if rule is None or promotes(spec):
        return []
    running = Phase.RUNNING
    candidates = [t for t in trials if t.phase is running and not t.stop_requested and t.history]
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
        everyone = averages.get(t)
        if everyone is None:
            everyone = averages[t] = sorted(
                _running_averages([r.history for r in reported], t, sign)
            )
        if len(everyone) - 1 < rule.min_trials:
            continue
        (own,) = _running_averages([trial.history], t, sign)  # the trial reached t
        best_so_far = max(sign * m for _, m in trial.history)
        if best_so_far < _median_without(everyone, bisect.bisect_left(everyone, own)):
            stops.append(trial.name)
    return stops


def _running_averages(histories: list[History], t: int, sign: float) -> list[float]:
    """Mean (signed) metric over iterations <= t of each history that reached t."""
    averages = []
    for history in histories:  # Inlined, with no call per history: this runs over every trial.
        last = history[-1][0]
        if last < t:
            continue
        if last == t:
            prefix = history
        elif 0 < t < len(history) and history[t - 1][0] == t < history[t][0]:  # 1, 2, ...
            prefix = history[:t]
        else:
            prefix = history[: bisect.bisect_right(history, t, key=_iteration)]
        if prefix:
            total: float = sum(map(_metric, prefix))
            averages.append(sign * total / len(prefix))
    return averages


def _median_without(ordered: list[float], k: int) -> float:
    """The median of `ordered` (sorted) without its k-th element, copying nothing."""
    size = len(ordered) - 1
    middle = size // 2

    def at(j: int) -> float:  # the j-th element of the list without element k
        return ordered[j if j < k else j + 1]

    return at(middle) if size % 2 else (at(middle - 1) + at(middle)) / 2


def _at_or_after(history: History, iteration: float) -> float | None:
    """The metric first reported at or after `iteration`, if any."""
    guess = math.ceil(iteration) - 1  # where a history of iterations 1, 2, ... has it
    if (
        0 <= guess < len(history)
        and history[guess][0] >= iteration
        and (guess == 0 or history[guess - 1][0] < iteration)
    ):
        return history[guess][1]
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
    furthest = max(_last(r.history) for r in reported) if max_t is None else 0
    milestones = rungs(rule, max_t, furthest)
    cutoffs: dict[float, float | None] = {}  # rung -> the (1 - 1/rf) quantile there
    stops = []
    for trial in candidates:
        last = _last(trial.history)
        reached = [r for r in milestones if last >= r]
        if not reached:
            continue
        rung = reached[-1]
        if rung not in cutoffs:
            values = _rung_values(reported, rung, sign)
            enough = len(values) >= rule.min_trials
            cutoffs[rung] = _quantile(values, 1 - 1 / rule.reduction_factor) if enough else None
        cutoff = cutoffs[rung]
        own = _at_or_after(trial.history, rung)
        if cutoff is not None and own is not None and sign * own < cutoff:
            stops.append(trial.name)
    return stops


def _rung_values(reported: list[TrialState], rung: float, sign: float) -> list[float]:
    """The (signed) metric each trial that reached `rung` first reported at or after it.

    `_at_or_after` inlined: this loop runs over every trial that reported.
    """
    guess = math.ceil(rung) - 1  # where a history of iterations 1, 2, ... has the rung
    first = guess == 0
    needed = guess + 1 if guess >= 0 else math.inf  # shorter histories are searched
    values = []
    for r in reported:
        history = r.history
        if history[-1][0] < rung:
            continue
        if (
            len(history) >= needed
            and history[guess][0] >= rung
            and (first or history[guess - 1][0] < rung)
        ):
            values.append(sign * history[guess][1])
        else:
            values.append(sign * history[bisect.bisect_left(history, rung, key=_iteration)][1])
    return values


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def asha_promotions(
    spec: SweepSpec, trials: Sequence[TrialState], capacity: int, exhausted: bool
) -> tuple[list[str], list[str]]:
    """ASHA's promotion variant: the Running trials to pause, the Paused ones to resume.

    A Running trial with p promotions is paused once it reported at or after rung p
    (trials promoted past every rung run to their budget). At most `capacity` Paused
    trials are resumed: first any that was paused before reaching its rung (nothing to
    judge), then, from the highest rung down, those among the top floor(n / rf) of the
    n trials that reached their rung (best first). With `exhausted` (no new trial can be
    created), the top is at least the best one.
    """
    rule = spec.early_stopping
    assert rule is not None
    sign = 1.0 if spec.objective.mode == "max" else -1.0
    max_t = rule.max_iterations or spec.template.stop.iterations
    furthest = max((_last(t.history) for t in trials if t.history), default=0) if not max_t else 0
    milestones = rungs(rule, max_t, furthest)
    running, paused_phase = Phase.RUNNING, Phase.PAUSED
    pause: list[str] = []
    unjudged: list[str] = []  # Paused short of their rung
    waiting: dict[int, list[TrialState]] = {}  # rung index -> trials Paused there
    for t in trials:
        phase = t.phase
        if phase is running:
            if t.stop_requested or t.pause_requested or not t.history:
                continue
            level = t.promotions
            if level < len(milestones) and t.history[-1][0] >= milestones[level]:
                pause.append(t.name)
        elif phase is paused_phase and not t.stop_requested:
            level = t.promotions
            if level >= len(milestones) or not t.history or t.history[-1][0] < milestones[level]:
                unjudged.append(t.name)
            else:
                waiting.setdefault(level, []).append(t)
    resume = unjudged[:capacity]
    for level in sorted(waiting, reverse=True):
        if len(resume) >= capacity:
            break
        top = _top_at(trials, milestones[level], sign, rule, exhausted, waiting[level])
        ranked = sorted((top[t.name], t.index, t.seed_index, t.name) for t in waiting[level]
                        if t.name in top)  # fmt: skip
        resume += [name for *_, name in ranked][: capacity - len(resume)]
    return pause, resume


def _top_at(
    trials: Sequence[TrialState],
    rung: float,
    sign: float,
    rule: EarlyStopping,
    exhausted: bool,
    candidates: list[TrialState],
) -> dict[str, int]:
    """Those of `candidates` in the top floor(n / rf) at `rung`, by name, with their rank.

    Ranks: 0 is the best; ties go to the lower (index, seed index). `_at_or_after` is
    inlined, as in `_rung_values`: this loop runs over every trial.
    """
    guess = math.ceil(rung) - 1  # where a history of iterations 1, 2, ... has the rung
    first = guess == 0
    needed = guess + 1 if guess >= 0 else math.inf
    keys: list[float] = []  # -sign * metric at the rung: lower is better
    for t in trials:
        history = t.history
        if not history or history[-1][0] < rung:
            continue
        if (
            len(history) >= needed
            and history[guess][0] >= rung
            and (first or history[guess - 1][0] < rung)
        ):
            keys.append(-sign * history[guess][1])
        else:
            keys.append(-sign * history[bisect.bisect_left(history, rung, key=_iteration)][1])
    n = len(keys)
    quota = int(n // rule.reduction_factor) if n >= rule.min_trials else 0
    if exhausted:
        quota = max(quota, 1)
    keys.sort()
    top = {}
    for c in candidates:
        own = -sign * _reached(c.history, rung)
        rank = bisect.bisect_left(keys, own)
        if rank < quota and bisect.bisect_right(keys, own) - rank > 1:  # tied with others
            rank += len(
                [
                    t
                    for t in trials
                    if t.history
                    and t.history[-1][0] >= rung
                    and -sign * _reached(t.history, rung) == own
                    and (t.index, t.seed_index) < (c.index, c.seed_index)
                ]
            )
        if rank < quota:
            top[c.name] = rank
    return top


def _reached(history: History, rung: float) -> float:
    """The metric first reported at or after `rung`, by a history known to reach it."""
    value = _at_or_after(history, rung)
    assert value is not None
    return value
