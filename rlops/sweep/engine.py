"""plan(): from a Sweep spec and its observed trials to what a driver must do next.

The engine keeps no state: everything it decides follows from the spec and the
trials passed in, so any driver can call it at any time, as often as it likes, and
a restarted driver picks up where the last one left off.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from optuna.trial import TrialState as OptunaState

from rlops.api import Backend, Phase, SearchAlgorithm, SweepSpec, TrialCounts
from rlops.sweep.early_stopping import early_stops
from rlops.sweep.parameters import apply_parameters
from rlops.sweep.placement import BurstPlacer, burst_moves, fixed_backend, is_burst, trial_placement
from rlops.sweep.space import Axis, axes, configuration_count, grid_point, random_point
from rlops.sweep.status import (
    TOP,
    Configuration,
    Outcome,
    configurations,
    ranked,
    summary,
    sweep_status,
)
from rlops.sweep.tpe import Observation, tpe_points
from rlops.sweep.trials import (
    ACTIVE_PHASES,
    WAITING_PHASES,
    Plan,
    TrialPlan,
    TrialState,
    trial_labels,
    trial_name,
)


def plan(
    spec: SweepSpec, sweep_name: str, trials: Sequence[TrialState], generation: int | None = None
) -> Plan:
    """What to create, retry, stop and move, the new status, and whether the sweep is done.

    - At most `parallelism` trials are ever Pending, Submitted or Running, retries included.
    - A Failed trial is retried (same name) while its attempts are below maxAttempts.
    - A Stopped trial is never started again; no name is ever created twice.
    - When more configurations failed than maxFailedTrials, the sweep is done at once and
      every unfinished trial is listed in `stop`.
    - When a configuration with all its seeds finished reaches objective.goal, nothing more
      is created or retried; trials already under way run to their end, then it is done.
    """
    seeds = spec.seeds_per_trial
    configs = configurations(trials)
    scores = ranked(spec, configs)
    failed_for_good = [t for t in trials if _failed_for_good(spec, t)]
    failed_configs = len({t.index for t in failed_for_good})
    too_many = spec.max_failed_trials is not None and failed_configs > spec.max_failed_trials
    goal = _goal_reached(spec, scores)
    finishing = too_many or goal

    active = [t for t in trials if t.phase in ACTIVE_PHASES]
    capacity = max(0, spec.parallelism - len(active))
    retryable = sorted(
        (t for t in trials if t.phase == Phase.FAILED and not _failed_for_good(spec, t)),
        key=lambda t: (t.index, t.seed_index),
    )
    retry = [] if finishing else [t.name for t in retryable[:capacity]]
    capacity -= len(retry)

    space = axes(spec)
    total = configuration_count(spec, space)
    slots = [] if finishing else _take(_open_slots(configs, seeds, total), capacity)
    create = _trial_plans(spec, sweep_name, trials, configs, slots, space)

    if too_many:
        stop = [t.name for t in active if not t.stop_requested]
    else:
        stop = early_stops(spec, trials)
    move = [] if finishing else burst_moves(spec, trials)
    done = too_many or (not active and not create and not retry)

    outcome = Outcome(
        counts=_counts(trials, create, len(retry), finishing, spec),
        backends=_backends(trials, create, move),
        top=[summary(mean, c) for mean, c in scores[:TOP]],
        done=done,
        failed_configurations=failed_configs,
        too_many_failures=too_many,
        goal_reached=goal,
        configurations_done=sum(1 for c in configs.values() if _settled(spec, c, seeds)),
        configurations_total=total,
    )
    return Plan(
        create=create,
        retry=retry,
        stop=stop,
        move=move,
        status=sweep_status(spec, outcome, generation),
        done=done,
    )


def _failed_for_good(spec: SweepSpec, trial: TrialState) -> bool:
    return trial.phase == Phase.FAILED and trial.attempts >= spec.max_attempts


def _settled(spec: SweepSpec, config: Configuration, seeds: int) -> bool:
    """All seeds of the configuration exist and none will run again."""
    return len({t.seed_index for t in config.trials}) >= seeds and all(
        t.phase.finished and (t.phase != Phase.FAILED or _failed_for_good(spec, t))
        for t in config.trials
    )


def _goal_reached(spec: SweepSpec, scores: list[tuple[float, Configuration]]) -> bool:
    goal = spec.objective.goal
    if goal is None:
        return False
    for mean, config in scores:  # Best first: the first settled one decides.
        if _settled(spec, config, spec.seeds_per_trial):
            return mean >= goal if spec.objective.mode == "max" else mean <= goal
    return False


def _open_slots(
    configs: dict[int, Configuration], seeds: int, total: int
) -> Iterator[tuple[int, int]]:
    """(index, seed index) pairs not created yet, in order: gaps first, then new configurations."""
    highest = max(configs, default=-1)
    incomplete = [i for i, c in configs.items() if len(c.trials) < seeds]
    gaps = [] if len(configs) == highest + 1 else [i for i in range(highest) if i not in configs]
    for index in sorted(incomplete + gaps):
        if index >= total:
            continue
        have = {t.seed_index for t in configs[index].trials} if index in configs else set()
        for seed_index in range(seeds):
            if seed_index not in have:
                yield index, seed_index
    for index in range(highest + 1, total):
        for seed_index in range(seeds):
            yield index, seed_index


def _take(slots: Iterator[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for slot in slots:
        if len(out) >= n:
            break
        out.append(slot)
    return out


def _trial_plans(
    spec: SweepSpec,
    sweep_name: str,
    trials: Sequence[TrialState],
    configs: dict[int, Configuration],
    slots: list[tuple[int, int]],
    space: list[Axis],
) -> list[TrialPlan]:
    if not slots:
        return []
    points = _points(spec, configs, sorted({i for i, _ in slots if i not in configs}), space)
    placer = BurstPlacer(spec, trials) if is_burst(spec) else None
    backend = fixed_backend(spec)
    plans = []
    applied: dict[int, Any] = {}
    for index, seed_index in slots:
        parameters = dict(configs[index].first.parameters) if index in configs else points[index]
        if index not in applied:
            applied[index] = apply_parameters(spec.template, parameters)
        base = applied[index]
        chosen = placer.next() if placer is not None else backend
        seed = (base.seed if base.seed is not None else spec.seed) + seed_index
        trial_spec = base.model_copy(
            update={"seed": seed, "placement": trial_placement(spec, base.placement, chosen)}
        )
        plans.append(
            TrialPlan(
                name=trial_name(sweep_name, index, seed_index, spec.seeds_per_trial),
                index=index,
                seed_index=seed_index,
                seed=seed,
                parameters=dict(parameters),
                spec=trial_spec,
                backend=chosen,
                labels=trial_labels(sweep_name, index, seed_index),
            )
        )
    return plans


def _points(
    spec: SweepSpec, configs: dict[int, Configuration], indices: list[int], space: list[Axis]
) -> dict[int, dict[str, Any]]:
    """Parameters of new configurations."""
    if spec.algorithm == SearchAlgorithm.GRID:
        return {i: grid_point(space, i) for i in indices}
    if spec.algorithm == SearchAlgorithm.RANDOM:
        return {i: random_point(spec, space, i) for i in indices}
    return tpe_points(spec, space, _observations(spec, configs), indices)


def _observations(spec: SweepSpec, configs: dict[int, Configuration]) -> list[Observation]:
    """Each known configuration for TPE: COMPLETE with its mean, FAIL, or RUNNING."""
    out = []
    for index in sorted(configs):
        config = configs[index]
        parameters = dict(config.first.parameters)
        if _settled(spec, config, spec.seeds_per_trial):
            mean = config.mean()
            if mean is not None and math.isfinite(mean):
                out.append(Observation(index, parameters, OptunaState.COMPLETE, mean))
            else:
                out.append(Observation(index, parameters, OptunaState.FAIL))
        else:
            out.append(Observation(index, parameters, OptunaState.RUNNING))
    return out


def _counts(
    trials: Sequence[TrialState],
    create: list[TrialPlan],
    retried: int,
    finishing: bool,
    spec: SweepSpec,
) -> TrialCounts:
    """Trials by phase as they will be once the plan is applied.

    A Failed trial awaiting a retry counts as pending, unless the sweep is finishing and
    will not retry it: then it counts as failed.
    """
    phases = Counter(t.phase for t in trials)
    awaiting = sum(1 for t in trials if t.phase == Phase.FAILED and not _failed_for_good(spec, t))
    failed = phases[Phase.FAILED] - awaiting + (awaiting - retried if finishing else 0)
    pending = sum(phases[p] for p in WAITING_PHASES) + len(create)
    pending += retried + (0 if finishing else awaiting - retried)
    return TrialCounts(
        total=len(trials) + len(create),
        pending=pending,
        running=phases[Phase.RUNNING],
        succeeded=phases[Phase.SUCCEEDED],
        failed=failed,
        stopped=phases[Phase.STOPPED],
    )


def _backends(
    trials: Sequence[TrialState], create: list[TrialPlan], move: list[tuple[str, Backend]]
) -> dict[str, int]:
    """Trials by backend once the plan is applied (moved trials count where they go)."""
    moved = dict(move)
    counts: Counter[str] = Counter()
    for t in trials:
        backend = moved.get(t.name, t.backend)
        if backend is not None:
            counts[backend.value] += 1
    for p in create:
        counts[p.backend.value] += 1
    return dict(sorted(counts.items()))
