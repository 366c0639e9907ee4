"""plan(): from a Sweep spec and its observed trials to what a driver must do next.

The engine keeps no state: everything it decides follows from the spec and the
trials passed in, so any driver can call it at any time, as often as it likes, and
a restarted driver picks up where the last one left off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import chain, islice
from typing import Any

from optuna.trial import TrialState as OptunaState

from rlops.api import Backend, Phase, RLExperimentSpec, SearchAlgorithm, SweepSpec, TrialCounts
from rlops.sweep.census import Census, Configuration, take_census
from rlops.sweep.early_stopping import asha_promotions, early_stops, promotes
from rlops.sweep.parameters import apply_parameters
from rlops.sweep.pbt import is_pbt, pbt_actions
from rlops.sweep.placement import BurstPlacer, burst_moves, fixed_backend, is_burst, trial_placement
from rlops.sweep.space import Axis, axes, configuration_count, grid_point, random_point
from rlops.sweep.status import TOP, Outcome, summary, sweep_status
from rlops.sweep.tpe import HISTORY_LIMIT, Observation, tpe_points
from rlops.sweep.trials import (
    WAITING_PHASES,
    ExploitPlan,
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
      Under ASHA's promotion variant their end is their next rung (nothing resumes them).
    """
    census = take_census(spec, trials)
    failed = len(census.failed_configurations)
    too_many = spec.max_failed_trials is not None and failed > spec.max_failed_trials
    goal = _goal_reached(spec, census)
    finishing = too_many or goal

    capacity = max(0, spec.parallelism - len(census.active))
    retry = [] if finishing else [t.name for t in census.retryable[:capacity]]
    capacity -= len(retry)

    space = axes(spec)
    total = configuration_count(spec, space)
    openings = _open_slots(census, spec, total)
    pause: list[str] = []
    resume: list[str] = []
    at_rung: list[str] = []  # finishing under promotion: trials at their rung end there
    exploit: list[ExploitPlan] = []
    if is_pbt(spec) and not finishing:
        pause, resume, exploit = pbt_actions(
            spec, trials, capacity, lambda t, p: _trial_spec(spec, p, t.seed_index, t.backend)
        )
        capacity -= len(resume)
    elif promotes(spec) and not finishing:
        first = next(openings, None)
        pause, resume = asha_promotions(spec, trials, capacity, exhausted=first is None)
        capacity -= len(resume)
        openings = chain([first] if first is not None else [], openings)
    elif promotes(spec) and not too_many:
        at_rung, _ = asha_promotions(spec, trials, 0, exhausted=True)
    slots = [] if finishing else list(islice(openings, capacity))
    create = _trial_plans(spec, sweep_name, trials, census, slots, space)

    if too_many:
        stop = [t.name for t in census.active if not t.stop_requested]
    else:
        stop = early_stops(spec, trials) + at_rung
    done = too_many or (not census.active and not create and not retry and not resume)
    if census.paused and (finishing or done):
        # Nothing will resume them: they end Stopped, and the sweep once they have.
        stop += [t.name for t in census.paused if not t.stop_requested]
        done = too_many
    move = [] if finishing else burst_moves(spec, trials)

    outcome = Outcome(
        counts=_counts(census, len(trials), len(create), len(retry), finishing, resume, stop),
        backends=_backends(trials, create, move),
        top=[summary(c) for c in census.best(spec.objective.mode == "max", TOP)],
        done=done,
        failed_configurations=failed,
        too_many_failures=too_many,
        goal_reached=goal,
        configurations_done=census.settled,
        configurations_total=total,
    )
    return Plan(
        create=create,
        retry=retry,
        stop=stop,
        move=move,
        status=sweep_status(spec, outcome, generation),
        done=done,
        pause=pause,
        resume=resume,
        exploit=exploit,
    )


def _goal_reached(spec: SweepSpec, census: Census) -> bool:
    """Whether a configuration with every seed finished has a mean at or beyond the goal."""
    goal = spec.objective.goal
    if goal is None:
        return False
    maximise = spec.objective.mode == "max"
    mean = census.best_settled_mean(maximise)
    return mean is not None and (mean >= goal if maximise else mean <= goal)


def _open_slots(census: Census, spec: SweepSpec, total: int) -> Iterator[tuple[int, int]]:
    """(index, seed index) pairs not created yet, in order: gaps first, then new configurations."""
    configs, seeds, highest = census.configurations, spec.seeds_per_trial, census.highest
    gaps = [] if len(configs) == highest + 1 else [i for i in range(highest) if i not in configs]
    for index in sorted(census.incomplete + gaps):
        if index >= total:
            continue
        have = {t.seed_index for t in configs[index].trials} if index in configs else set()
        for seed_index in range(seeds):
            if seed_index not in have:
                yield index, seed_index
    for index in range(highest + 1, total):
        for seed_index in range(seeds):
            yield index, seed_index


def _trial_plans(
    spec: SweepSpec,
    sweep_name: str,
    trials: Sequence[TrialState],
    census: Census,
    slots: list[tuple[int, int]],
    space: list[Axis],
) -> list[TrialPlan]:
    if not slots:
        return []
    configs = census.configurations
    points = _points(spec, census, sorted({i for i, _ in slots if i not in configs}), space)
    placer = BurstPlacer(spec, trials) if is_burst(spec) else None
    backend = fixed_backend(spec)
    plans = []
    applied: dict[int, RLExperimentSpec] = {}
    for index, seed_index in slots:
        parameters = dict(configs[index].first.parameters) if index in configs else points[index]
        if index not in applied:
            applied[index] = apply_parameters(spec.template, parameters)
        chosen = placer.next() if placer is not None else backend
        trial_spec = _placed(spec, applied[index], seed_index, chosen)
        seed = trial_spec.seed
        assert seed is not None
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


def _placed(
    spec: SweepSpec, base: RLExperimentSpec, seed_index: int, backend: Backend
) -> RLExperimentSpec:
    """A trial's spec: `base` (the template with its parameters) seeded and placed."""
    seed = (base.seed if base.seed is not None else spec.seed) + seed_index
    placement = trial_placement(spec, base.placement, backend)
    return base.model_copy(update={"seed": seed, "placement": placement})


def _trial_spec(
    spec: SweepSpec, parameters: dict[str, Any], seed_index: int, backend: Backend | None
) -> RLExperimentSpec:
    """The spec of an existing trial with (new) `parameters`, where it runs."""
    base = apply_parameters(spec.template, parameters)
    return _placed(spec, base, seed_index, backend or fixed_backend(spec))


def _points(
    spec: SweepSpec, census: Census, indices: list[int], space: list[Axis]
) -> dict[int, dict[str, Any]]:
    """Parameters of new configurations."""
    if spec.algorithm == SearchAlgorithm.GRID:
        return {i: grid_point(space, i) for i in indices}
    if spec.algorithm in (SearchAlgorithm.RANDOM, SearchAlgorithm.PBT):
        return {i: random_point(spec, space, i) for i in indices}
    return tpe_points(spec, space, _observations(census), indices)


def _observations(census: Census) -> list[Observation]:
    """What TPE learns from: the most recent finished configurations and every active one.

    Finished ones are COMPLETE with their mean, or FAIL without one; the others are
    RUNNING. Only the HISTORY_LIMIT most recent finished ones are looked at, so a plan
    stays fast at any number of trials.
    """
    configs = census.configurations
    unsettled = set(census.unsettled)
    wanted = min(HISTORY_LIMIT, len(configs) - len(unsettled))
    dense = census.highest < 2 * len(configs)  # Walking down the indices skips few gaps.
    recent = range(census.highest, -1, -1) if dense else sorted(configs, reverse=True)
    finished: list[Observation] = []
    for index in recent:
        if len(finished) == wanted:
            break
        if index in unsettled or index not in configs:
            continue
        config = configs[index]
        state = OptunaState.COMPLETE if config.mean is not None else OptunaState.FAIL
        finished.append(_observation(config, state))
    running = [_observation(configs[i], OptunaState.RUNNING) for i in census.unsettled]
    return [*reversed(finished), *running]


def _observation(config: Configuration, state: OptunaState) -> Observation:
    return Observation(config.index, dict(config.first.parameters), state, config.mean)


def _counts(
    census: Census,
    observed: int,
    created: int,
    retried: int,
    finishing: bool,
    resumed: list[str],
    stopped: list[str],
) -> TrialCounts:
    """Trials by phase as they will be once the plan is applied.

    A Failed trial awaiting a retry counts as pending, unless the sweep is finishing and
    will not retry it: then it counts as failed. A resumed trial counts as pending, a
    Paused one being stopped as stopped.
    """
    phases = census.phases
    awaiting = len(census.retryable)
    failed = phases[Phase.FAILED] - awaiting + (awaiting - retried if finishing else 0)
    pending = sum(phases[p] for p in WAITING_PHASES) + created + retried + len(resumed)
    pending += 0 if finishing else awaiting - retried
    ending = len({t.name for t in census.paused} & set(stopped)) if census.paused else 0
    return TrialCounts(
        total=observed + created,
        pending=pending,
        running=phases[Phase.RUNNING],
        succeeded=phases[Phase.SUCCEEDED],
        failed=failed,
        stopped=phases[Phase.STOPPED] + ending,
        paused=phases[Phase.PAUSED] - len(resumed) - ending,
    )


def _backends(
    trials: Sequence[TrialState], create: list[TrialPlan], move: list[tuple[str, Backend]]
) -> dict[str, int]:
    """Trials by backend once the plan is applied (moved trials count where they go)."""
    counts = Counter(t.backend for t in trials)
    counts.update(p.backend for p in create)
    for _, backend in move:  # Moves only ever leave Kubernetes.
        counts[Backend.KUBERNETES] -= 1
        counts[backend] += 1
    return dict(sorted((b.value, n) for b, n in counts.items() if b is not None and n))
