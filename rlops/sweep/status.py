"""The leaderboard of configurations and the bounded Sweep status built from it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rlops.api import (
    Condition,
    Phase,
    SweepPhase,
    SweepSpec,
    SweepStatus,
    TrialCounts,
    TrialSummary,
)
from rlops.sweep.trials import TrialState

TOP = 5
SCORED_PHASES = frozenset({Phase.SUCCEEDED, Phase.STOPPED})


@dataclass
class Configuration:
    """The trials (seeds) of one configuration."""

    index: int
    trials: list[TrialState] = field(default_factory=list)

    @property
    def first(self) -> TrialState:
        return min(self.trials, key=lambda t: t.seed_index)

    def mean(self) -> float | None:
        """Mean objective over the seeds that finished with one (Succeeded or Stopped)."""
        values = [
            t.objective
            for t in self.trials
            if t.phase in SCORED_PHASES and t.objective is not None and math.isfinite(t.objective)
        ]
        return sum(values) / len(values) if values else None


def configurations(trials: Sequence[TrialState]) -> dict[int, Configuration]:
    """Trials grouped by configuration index."""
    out: dict[int, Configuration] = {}
    for trial in trials:
        config = out.get(trial.index)
        if config is None:
            config = out[trial.index] = Configuration(trial.index)
        config.trials.append(trial)
    return out


def ranked(spec: SweepSpec, configs: dict[int, Configuration]) -> list[tuple[float, Configuration]]:
    """Configurations with a mean objective, best first; ties go to the lower index."""
    sign = -1.0 if spec.objective.mode == "max" else 1.0
    scored = [(mean, c) for c in configs.values() if (mean := c.mean()) is not None]
    scored.sort(key=lambda item: (sign * item[0], item[1].index))
    return scored


def summary(mean: float, config: Configuration) -> TrialSummary:
    first = config.first
    return TrialSummary(name=first.name, parameters=dict(first.parameters), objective=mean)


def leaderboard(spec: SweepSpec, trials: Sequence[TrialState]) -> list[TrialSummary]:
    """Every configuration with an objective, ranked by its mean over seeds, best first."""
    return [summary(mean, c) for mean, c in ranked(spec, configurations(trials))]


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
    best = outcome.top[0] if outcome.top else None
    if best is not None and best.objective is not None:
        message += f"; best {best.name} ({spec.objective.metric} {best.objective:.6g})"
    return SweepStatus(
        phase=phase,
        trials=outcome.counts,
        backends=outcome.backends,
        best_trial=best,
        top=outcome.top,
        message=message,
        observed_generation=generation,
        conditions=_conditions(phase, reason, message, generation),
    )


def _phase(spec: SweepSpec, o: Outcome) -> tuple[SweepPhase, str, str]:
    progress = f"{o.configurations_done}/{o.configurations_total} configurations done"
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
        goal = (
            f"goal {spec.objective.goal:g} reached, waiting for running trials; "
            if (o.goal_reached and spec.objective.goal is not None)
            else ""
        )
        return (
            SweepPhase.RUNNING,
            "TrialsRunning",
            f"{goal}{progress}; {o.counts.running} running, {o.counts.pending} pending",
        )
    if o.counts.succeeded == 0:
        return SweepPhase.FAILED, "NoTrialSucceeded", f"no trial succeeded; {progress}"
    if o.goal_reached and spec.objective.goal is not None:
        return SweepPhase.SUCCEEDED, "GoalReached", f"goal {spec.objective.goal:g} reached"
    return SweepPhase.SUCCEEDED, "Completed", progress


def _conditions(
    phase: SweepPhase, reason: str, message: str, generation: int | None
) -> list[Condition]:
    """Ready, Reconciling and Stalled as kstatus reads them; transition times are the driver's."""
    running = phase in (SweepPhase.PENDING, SweepPhase.RUNNING)
    stalled = phase == SweepPhase.FAILED
    ready = phase == SweepPhase.SUCCEEDED

    def condition(kind: str, value: bool) -> Condition:
        return Condition(
            type=kind,
            status="True" if value else "False",
            reason=reason,
            message=message,
            observed_generation=generation,
        )

    return [
        condition("Ready", ready),
        condition("Reconciling", running),
        condition("Stalled", stalled),
    ]
