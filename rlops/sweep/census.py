"""One pass over the observed trials: what every decision of a plan needs, counted once.

A plan runs on every reconcile of sweeps with tens of thousands of trials, so the
trials are walked once, with identity tests on the phase (hashing a Phase is a
Python call), and nothing is made per trial. In the common case (one seed per
configuration, one trial per index) a configuration *is* its trial: a
`Configuration` is only made for the few that a plan asks for (the best few, the
parameters of a retried gap, TPE's recent history). Several seeds, or several
trials on one index, take the general path, which groups trials by configuration.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from rlops.api import Phase, SweepSpec
from rlops.sweep.trials import TrialState

FINISHED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED})
SCORED_PHASES = frozenset({Phase.SUCCEEDED, Phase.STOPPED})

_SUCCEEDED, _FAILED, _STOPPED, _PAUSED = Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED, Phase.PAUSED
_index = attrgetter("index")


@dataclass(slots=True)
class Configuration:
    """The trials (seeds) of one configuration and what they add up to."""

    index: int
    trials: list[TrialState]
    mean: float | None = None  # over the seeds that finished with an objective
    settled: bool = False  # every seed exists and none will run again

    @property
    def first(self) -> TrialState:
        """The configuration's representative: its lowest seed."""
        return min(self.trials, key=lambda t: t.seed_index)


@dataclass(frozen=True)
class Census:
    """The trials counted for a plan.

    `configurations` maps every observed index to its configuration; with one trial
    per configuration it makes each one when it is looked up, so iterating over all
    its values costs what the general path costs and belongs in no hot path.
    """

    trials: Sequence[TrialState]
    configurations: Mapping[int, Configuration]
    phases: Counter[Phase]
    active: list[TrialState]
    paused: list[TrialState]  # Paused: neither active nor finished
    retryable: list[TrialState]  # Failed, attempts left, by (index, seed index)
    failed_configurations: set[int]  # a seed failed for good
    settled: int  # configurations with every seed finished for good
    unsettled: list[int]  # indices of the other configurations, ascending
    incomplete: list[int]  # indices of configurations with fewer trials than seeds, ascending
    highest: int  # the highest index observed; -1 without trials
    one_per_index: bool  # one seed per configuration and one trial per index

    def best(self, maximise: bool, n: int) -> list[Configuration]:
        """The n configurations with the best mean, best first (ties: lower index)."""
        if not self.one_per_index:
            return rank(self.configurations.values(), maximise, n)
        return [self.configurations[t.index] for t in _best_trials(self.trials, maximise, n)]

    def best_settled_mean(self, maximise: bool) -> float | None:
        """The best mean of a configuration whose seeds all finished for good."""
        if self.one_per_index:  # A trial with an objective is settled.
            top = self.best(maximise, 1)
            return top[0].mean if top else None
        means = [c.mean for c in self.configurations.values() if c.settled and c.mean is not None]
        if not means:
            return None
        return max(means) if maximise else min(means)


def rank(
    configs: Iterable[Configuration], maximise: bool, n: int | None = None
) -> list[Configuration]:
    """Configurations with a mean, best first (ties: lower index); the n best if given."""
    sign = -1.0 if maximise else 1.0
    scored = [c for c in configs if c.mean is not None]

    def key(c: Configuration) -> tuple[float, int]:
        assert c.mean is not None
        return sign * c.mean, c.index

    if n is None:
        return sorted(scored, key=key)
    return heapq.nsmallest(n, scored, key=key)


def take_census(spec: SweepSpec, trials: Sequence[TrialState]) -> Census:
    """Classify the trials and group them by configuration."""
    max_attempts, seeds = spec.max_attempts, spec.seeds_per_trial
    active: list[TrialState] = []
    failed: list[TrialState] = []
    stopped: list[TrialState] = []
    paused: list[TrialState] = []
    for t in trials:  # Locals and identity tests only: this runs over every trial.
        phase = t.phase
        if phase is _SUCCEEDED:
            continue
        if phase is _FAILED:
            failed.append(t)
        elif phase is _STOPPED:
            stopped.append(t)
        elif phase is _PAUSED:
            paused.append(t)
        else:
            active.append(t)
    phases = Counter(t.phase for t in active)
    phases.update({_FAILED: len(failed), _STOPPED: len(stopped), _PAUSED: len(paused)})
    phases[_SUCCEEDED] = len(trials) - len(active) - len(failed) - len(stopped) - len(paused)
    retryable = sorted(
        (t for t in failed if t.attempts < max_attempts), key=lambda t: (t.index, t.seed_index)
    )
    failed_configurations = {t.index for t in failed if t.attempts >= max_attempts}

    by_index = dict(zip(map(_index, trials), trials, strict=True))
    highest = max(by_index, default=-1)
    if seeds == 1 and len(by_index) == len(trials):
        return Census(
            trials=trials,
            configurations=_OnePerIndex(by_index, max_attempts),
            phases=phases,
            active=active,
            paused=paused,
            retryable=retryable,
            failed_configurations=failed_configurations,
            settled=len(trials) - len(active) - len(paused) - len(retryable),
            unsettled=sorted(
                {t.index for t in active} | {t.index for t in paused} | {t.index for t in retryable}
            ),
            incomplete=[],
            highest=highest,
            one_per_index=True,
        )
    configurations = _grouped(trials, seeds, max_attempts)
    return Census(
        trials=trials,
        configurations=configurations,
        phases=phases,
        active=active,
        paused=paused,
        retryable=retryable,
        failed_configurations=failed_configurations,
        settled=sum(1 for c in configurations.values() if c.settled),
        unsettled=sorted(i for i, c in configurations.items() if not c.settled),
        incomplete=sorted(i for i, c in configurations.items() if len(c.trials) < seeds),
        highest=highest,
        one_per_index=False,
    )


def _grouped(
    trials: Sequence[TrialState], seeds: int, max_attempts: int
) -> dict[int, Configuration]:
    groups: dict[int, list[TrialState]] = {}
    for t in trials:
        group = groups.get(t.index)
        if group is None:
            groups[t.index] = [t]
        else:
            group.append(t)
    return {index: summarise(index, group, seeds, max_attempts) for index, group in groups.items()}


class _OnePerIndex(Mapping[int, Configuration]):
    """Configurations of one trial each, made when looked up."""

    def __init__(self, by_index: dict[int, TrialState], max_attempts: int) -> None:
        self._by_index = by_index
        self._max_attempts = max_attempts

    def __getitem__(self, index: int) -> Configuration:
        return summarise(index, [self._by_index[index]], 1, self._max_attempts)

    def __contains__(self, index: object) -> bool:
        return index in self._by_index

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_index)

    def __len__(self) -> int:
        return len(self._by_index)


def _best_trials(trials: Sequence[TrialState], maximise: bool, n: int) -> list[TrialState]:
    """The n Succeeded or Stopped trials with the best finite objective (ties: lower index)."""
    kept: list[tuple[float, int, TrialState]] = []  # a min-heap: the worst one kept on top
    worst = -math.inf  # the score to beat once n are kept
    for t in trials:
        objective = t.objective
        if objective is None:
            continue
        score = objective if maximise else -objective
        if score < worst:
            continue
        phase = t.phase
        if (phase is not _SUCCEEDED and phase is not _STOPPED) or not math.isfinite(score):
            continue
        item = (score, -t.index, t)  # Indices are unique here: trials are never compared.
        if len(kept) < n:
            heapq.heappush(kept, item)
        elif item > kept[0]:
            heapq.heapreplace(kept, item)
        if len(kept) == n:
            worst = kept[0][0]
    return [t for _, _, t in sorted(kept, reverse=True)]


def summarise(index: int, group: list[TrialState], seeds: int, max_attempts: int) -> Configuration:
    total = 0.0
    scored_seeds = 0
    settled = len({t.seed_index for t in group}) >= seeds
    for t in group:
        phase, objective = t.phase, t.objective
        if phase not in FINISHED_PHASES or (phase is Phase.FAILED and t.attempts < max_attempts):
            settled = False
        if phase in SCORED_PHASES and objective is not None and math.isfinite(objective):
            total += objective
            scored_seeds += 1
    return Configuration(index, group, total / scored_seeds if scored_seeds else None, settled)
