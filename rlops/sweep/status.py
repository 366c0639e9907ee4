"""The leaderboard of configurations and the bounded Sweep status built from it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rlops.api import (
    Condition,
    SweepPhase,
    SweepSpec,
    SweepStatus,
    TrialCounts,
    TrialSummary,
)
from rlops.lifecycle.conditions import kstatus_conditions
from rlops.sweep.census import Configuration, rank, take_census
from rlops.sweep.trials import TrialState

TOP = 5


def best(
    spec: SweepSpec, configs: Iterable[Configuration], n: int | None = None
) -> list[Configuration]:
    """Configurations with a mean objective, best first (ties: lower index); the n best if given."""
    return rank(configs, spec.objective.mode == "max", n)


def summary(config: Configuration) -> TrialSummary:
    first = config.first
    return TrialSummary(
        name=first.name,
        parameters=dict(first.parameters),
        objective=config.mean,
        exploits=list(first.exploits),
    )


def leaderboard(spec: SweepSpec, trials: Sequence[TrialState]) -> list[TrialSummary]:
    """Every configuration with an objective, ranked by its mean over seeds, best first.

    A configuration's objective is the mean over its seeds that finished (Succeeded or
    Stopped) with a finite objective; one without such a seed is not ranked.
    """
    configs = take_census(spec, trials).configurations.values()
    return [summary(c) for c in best(spec, configs)]


@dataclass(frozen=True)
class Outcome:
    """What the engine concluded about the sweep, for its status."""

    counts: TrialCounts
    backends: dict[str, int]
    top: list[TrialSummary]
    done: bool
    failed_configurations: int
    too_many_failures: bool
    goal_reached: bool
    configurations_done: int
    configurations_total: int


def sweep_status(spec: SweepSpec, outcome: Outcome, generation: int | None) -> SweepStatus:
    """The Sweep status: phase, counts, best few, message and kstatus conditions."""
    phase, reason, message = _phase(spec, outcome)
    leader = outcome.top[0] if outcome.top else None
    if leader is not None and leader.objective is not None:
        message += f"; best {leader.name} ({spec.objective.metric} {leader.objective:.6g})"
    return SweepStatus(
        phase=phase,
        trials=outcome.counts,
        backends=outcome.backends,
        best_trial=leader,
        top=outcome.top,
        message=message,
        observed_generation=generation,
        conditions=_conditions(phase, reason, message, generation),
    )


def _phase(spec: SweepSpec, o: Outcome) -> tuple[SweepPhase, str, str]:
    progress = f"{o.configurations_done}/{o.configurations_total} configurations done"
    goal = spec.objective.goal
    if o.too_many_failures:
        return (
            SweepPhase.FAILED,
            "TooManyFailures",
            f"{o.failed_configurations} configurations failed, more than maxFailedTrials "
            f"({spec.max_failed_trials}); {progress}",
        )
    if not o.done:
        if o.counts.total == 0:
            return SweepPhase.PENDING, "NoTrials", "no trials yet"
        waiting = (
            f"goal {goal:g} reached, waiting for running trials; "
            if (o.goal_reached and goal is not None)
            else ""
        )
        return (
            SweepPhase.RUNNING,
            "TrialsRunning",
            f"{waiting}{progress}; {o.counts.running} running, {o.counts.pending} pending",
        )
    if o.counts.succeeded == 0:
        return SweepPhase.FAILED, "NoTrialSucceeded", f"no trial succeeded; {progress}"
    if o.goal_reached and goal is not None:
        return SweepPhase.SUCCEEDED, "GoalReached", f"goal {goal:g} reached; {progress}"
    return SweepPhase.SUCCEEDED, "Completed", progress


def _conditions(
    phase: SweepPhase, reason: str, message: str, generation: int | None
) -> list[Condition]:
    """Ready, Reconciling and Stalled as kstatus reads them; transition times are the driver's."""
    return kstatus_conditions(
        ready=phase == SweepPhase.SUCCEEDED,
        reconciling=phase in (SweepPhase.PENDING, SweepPhase.RUNNING),
        stalled=phase == SweepPhase.FAILED,
        reason=reason,
        message=message,
        generation=generation,
    )
