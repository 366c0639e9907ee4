"""Population-based training (Jaderberg et al., 2017), asynchronous and stateless.

The population is the sweep's maxTrials trials, sampled at random. Every plan looks at
the trials afresh; what PBT remembers of a trial is in its `exploits` (the driver
records them) and its history:

- A trial is *due* once it has trained `perturbationInterval` iterations since its last
  exploit (or its start). Trials are ranked by their latest objective value (every trial
  that reported, whatever its phase, except Failed ones). With n of them, the top and
  bottom quantiles hold k = ceil(n * quantileFraction) trials each, at most n // 2.
- A due Running trial in the bottom quantile is paused (it checkpoints and ends).
- A Paused trial exploits: it continues from the latest checkpoint of a trial drawn from
  the current top quantile (itself excluded), with that trial's parameters explored
  (each resampled with `resampleProbability`, else multiplied by 0.8 or 1.2, kept within
  its bounds; grid/choice values move to a neighbour). Its own counters (iteration,
  timesteps, budget) stay its own. Without a top trial to copy, it resumes as it was.
- Being stateless, a due trial that is not in the bottom now can be paused at a later
  plan when better peers overtake it (as ASHA's stopping variant judges late arrivals).

Every random draw comes from a generator seeded with (sweep seed, trial, iteration), so
the same trials give the same plan in any process at any time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from rlops.api import (
    Distribution,
    DistributionType,
    Exploit,
    Phase,
    PopulationBasedTraining,
    RLExperimentSpec,
    SearchAlgorithm,
    SweepSpec,
)
from rlops.api.experiment import ExploitSource
from rlops.sweep.distributions import ENUMERATED, INTEGER, integer_bounds, quantise, sample
from rlops.sweep.trials import ExploitPlan, TrialState

PERTURBATION_FACTORS = (0.8, 1.2)


def is_pbt(spec: SweepSpec) -> bool:
    return spec.algorithm == SearchAlgorithm.PBT


def settings(spec: SweepSpec) -> PopulationBasedTraining:
    return spec.pbt or PopulationBasedTraining()


def last_perturbation(trial: TrialState) -> int:
    """The iteration of the trial's last exploit (0: it never exploited)."""
    return trial.exploits[-1].iteration if trial.exploits else 0


def quantiles(
    spec: SweepSpec, trials: Sequence[TrialState]
) -> tuple[list[TrialState], list[TrialState]]:
    """(bottom, top): the k worst and the k best trials by their latest objective value.

    Ties go to the lower (index, seed index) as the better one, so the order is total.
    """
    sign = 1.0 if spec.objective.mode == "max" else -1.0
    failed = Phase.FAILED
    scored = [t for t in trials if t.history and t.phase is not failed]
    ranked = sorted(scored, key=lambda t: (-sign * t.history[-1][1], t.index, t.seed_index))
    n = len(ranked)
    k = min(math.ceil(n * settings(spec).quantile_fraction), n // 2)
    if k == 0:
        return [], []
    return ranked[n - k :], ranked[:k]


def due(spec: SweepSpec, trial: TrialState) -> bool:
    """Whether the trial trained an interval since its last exploit (or its start)."""
    if not trial.history:
        return False
    interval = settings(spec).perturbation_interval
    return trial.history[-1][0] - last_perturbation(trial) >= interval


def pbt_actions(
    spec: SweepSpec,
    trials: Sequence[TrialState],
    capacity: int,
    trial_spec: Callable[[TrialState, dict[str, Any]], RLExperimentSpec],
) -> tuple[list[str], list[str], list[ExploitPlan]]:
    """(pause, resume, exploit): the due Running trials of the bottom quantile to pause, and
    at most `capacity` Paused trials to resume, by (index, seed index), with the exploits of
    those that have a top trial to copy. `trial_spec(trial, parameters)` is the trial's spec
    with those parameters."""
    bottom, top = quantiles(spec, trials)
    running = Phase.RUNNING
    pause = [
        t.name
        for t in bottom
        if t.phase is running and not t.stop_requested and not t.pause_requested and due(spec, t)
    ]
    paused = sorted(
        (t for t in trials if t.phase is Phase.PAUSED and not t.stop_requested),
        key=lambda t: (t.index, t.seed_index),
    )
    resume: list[str] = []
    exploits: list[ExploitPlan] = []
    for trial in paused[: max(0, capacity)]:
        resume.append(trial.name)
        sources = [t for t in top if t.name != trial.name]
        if not sources:
            continue
        iteration = trial.history[-1][0] if trial.history else 0
        rng = random.Random(f"rlops/pbt/{spec.seed}/{trial.name}/{iteration}")
        source = rng.choice(sources)
        parameters = explore(spec, dict(source.parameters), rng)
        record = Exploit(iteration=iteration, source=source.name, parameters=parameters)
        new_spec = trial_spec(trial, parameters)
        checkpoint = new_spec.checkpoint.model_copy(
            update={"exploit": ExploitSource(source=f"../{source.name}", iteration=iteration)}
        )
        new_spec = new_spec.model_copy(update={"checkpoint": checkpoint})
        exploits.append(ExploitPlan(name=trial.name, exploit=record, spec=new_spec))
    return pause, resume, exploits


def explore(spec: SweepSpec, parameters: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """New parameters from a better trial's: each one resampled with resampleProbability,
    else perturbed; keys are visited in declared order so the draws are reproducible."""
    p = settings(spec).resample_probability
    out = dict(parameters)
    for key, dist in spec.parameters.items():
        resample = rng.random() < p
        value = out.get(key)
        out[key] = sample(dist, rng) if resample or value is None else perturb(dist, value, rng)
    return out


def perturb(dist: Distribution, value: Any, rng: random.Random) -> Any:
    """A neighbouring value: x0.8 or x1.2 within bounds, or the next listed value."""
    if dist.type in ENUMERATED:
        values = list(dist.values or [])
        if value not in values:
            return rng.choice(values)
        position = values.index(value) + rng.choice((-1, 1))
        return values[min(max(position, 0), len(values) - 1)]
    factor = rng.choice(PERTURBATION_FACTORS)
    if dist.type in INTEGER:
        first, last, step = integer_bounds(dist)
        scaled = round(float(value) * factor)
        if scaled == value:  # too small to move by a factor: one step
            scaled = value + (step if factor > 1 else -step)
        snapped = first + round((scaled - first) / step) * step
        return int(min(max(snapped, first), last))
    moved = float(value) * factor
    if dist.type != DistributionType.NORMAL:
        if dist.low is not None:
            moved = max(moved, dist.low)
        if dist.high is not None:
            moved = min(moved, dist.high)
    return quantise(dist, moved)
