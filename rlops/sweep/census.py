"""One pass over the observed trials: what every decision of a plan needs, counted once.

A plan runs on every reconcile of sweeps with tens of thousands of trials, so the
trials are walked once here and each configuration is summarised once.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rlops.api import Phase, SweepSpec
from rlops.sweep.trials import ACTIVE_PHASES, TrialState

FINISHED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED})
SCORED_PHASES = frozenset({Phase.SUCCEEDED, Phase.STOPPED})


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


@dataclass
class Census:
    configurations: dict[int, Configuration] = field(default_factory=dict)
    phases: Counter[Phase] = field(default_factory=Counter)
    active: list[TrialState] = field(default_factory=list)
    retryable: list[TrialState] = field(default_factory=list)  # Failed, attempts left
    failed_configurations: set[int] = field(default_factory=set)  # a seed failed for good

    @property
    def settled(self) -> int:
        return sum(1 for c in self.configurations.values() if c.settled)


def take_census(spec: SweepSpec, trials: Sequence[TrialState]) -> Census:
    """Group the trials by configuration and classify them, in one pass."""
    groups: dict[int, list[TrialState]] = {}
    phases: Counter[Phase] = Counter()
    active: list[TrialState] = []
    retryable: list[TrialState] = []
    failed: set[int] = set()
    max_attempts = spec.max_attempts
    for t in trials:  # Locals only: this loop runs over every trial on every plan.
        phase = t.phase
        phases[phase] += 1
        group = groups.get(t.index)
        if group is None:
            groups[t.index] = [t]
        else:
            group.append(t)
        if phase in ACTIVE_PHASES:
            active.append(t)
        elif phase is Phase.FAILED:
            if t.attempts >= max_attempts:
                failed.add(t.index)
            else:
                retryable.append(t)
    seeds = spec.seeds_per_trial
    configurations = {}
    for index, group in groups.items():
        if len(group) == 1 and seeds == 1:  # The common case, inlined: no call per trial.
            t = group[0]
            phase, objective = t.phase, t.objective
            settled = phase in FINISHED_PHASES and (
                phase is not Phase.FAILED or t.attempts >= max_attempts
            )
            if phase not in SCORED_PHASES or objective is None or not math.isfinite(objective):
                objective = None
            configurations[index] = Configuration(index, group, objective, settled)
        else:
            configurations[index] = summarise(index, group, seeds, max_attempts)
    retryable.sort(key=lambda t: (t.index, t.seed_index))
    return Census(configurations, phases, active, retryable, failed)


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
