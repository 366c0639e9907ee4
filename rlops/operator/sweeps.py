"""Reconciling one Sweep: its child RLExperiments in, the engine's plan out (pure).

Trials are child RLExperiments named by the engine (`<sweep>-<index>[-s<seed>]`),
owned by the Sweep, labelled `rlops.dev/sweep`/`rlops.dev/trial`/`rlops.dev/seed`,
and annotated with their parameters. Everything the engine needs is read back
from the children on every plan: phase, attempts and objective from their status,
the progress history (for early stopping) from `rlops.dev/history`. What the
plan asks becomes:

- create: the child manifest (creation is idempotent by name); under ASHA's promotion
  variant it carries its first rung in `rlops.dev/pause-at`, so the run ends there by
  itself (a Paused child that did so counts as pause-requested);
- retry: `rlops.dev/attempt` set to the next attempt (an absolute value, so
  asking twice is asking once); the experiment reconciler replaces the RayJob;
- stop: `rlops.dev/stop` set to the reason; the experiment reconciler deletes the
  RayJob and marks the trial Stopped;
- pause: `rlops.dev/pause` set to the reason; the trial's driver ends the run with a
  checkpoint and marks it Paused;
- resume: one patch removing `rlops.dev/pause` and setting `rlops.dev/promotions` to
  the next count (absolute, like attempts) and `rlops.dev/pause-at` to the next rung (or
  removing it); the trial's driver runs the same attempt again from its checkpoint.
  Until it does, the Paused trial counts as Pending;
- move: the child's `spec.placement` switched to the new backend (burst).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rlops.api import Backend, Phase, PlacementSpec, Sweep, SweepStatus
from rlops.api.annotations import (
    ANNOTATION_HISTORY,
    ANNOTATION_PARAMETERS,
    ANNOTATION_PAUSE,
    ANNOTATION_PAUSE_AT,
    ANNOTATION_PROMOTIONS,
    promotions,
)
from rlops.lifecycle.conditions import stamp_transitions
from rlops.lifecycle.history import decode_history
from rlops.lifecycle.pausepoint import reached_pause_point
from rlops.lifecycle.progress import DEFAULT_METRIC
from rlops.operator.experiments import (
    ANNOTATION_ATTEMPT,
    ANNOTATION_OBJECTIVE,
    ANNOTATION_STOP,
    timestamp,
)
from rlops.operator.pbt import exploit_patch, read_exploits
from rlops.sweep import LABEL_SEED, LABEL_TRIAL, Plan, TrialPlan, TrialState, plan
from rlops.sweep.early_stopping import pause_point, promotes
from rlops.sweep.pbt import is_pbt
from rlops.sweep.placement import trial_placement

WAITING = (Phase.PENDING, Phase.SUBMITTED)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# A garbled child is not retried: a retry keeps the object, and so what garbles it.
NO_RETRY = 2**31 - 1


def trial_state(child: Mapping[str, Any], now: datetime) -> TrialState | None:
    """What the engine needs of one child RLExperiment (None if it is not a trial)."""
    state = _read_trial(child, now)
    return state if not isinstance(state, Exception) else _garbled(child)


def trial_problem(child: Mapping[str, Any], now: datetime) -> Exception | None:
    """Why a trial child cannot be read (None: it can, or it is not a trial)."""
    state = _read_trial(child, now)
    return state if isinstance(state, Exception) else None


def _read_trial(child: Mapping[str, Any], now: datetime) -> TrialState | Exception | None:
    meta = child.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    try:
        index, seed_index = int(labels[LABEL_TRIAL]), int(labels.get(LABEL_SEED, "0"))
    except (KeyError, ValueError, TypeError):
        return None
    try:
        return _trial_state(child, meta, labels, annotations, index, seed_index, now)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        return exc


def _garbled(child: Mapping[str, Any]) -> TrialState:
    """One garbled child (a hand-edited status or annotation) never stops its sweep: it
    counts as a failed trial of its configuration, not retried; the others go on."""
    meta = child.get("metadata") or {}
    labels = meta.get("labels") or {}
    return TrialState(name=str(meta.get("name")), index=int(labels[LABEL_TRIAL]),
                      seed_index=int(labels.get(LABEL_SEED, "0")), parameters={},
                      phase=Phase.FAILED, attempts=NO_RETRY)  # fmt: skip


def _trial_state(
    child: Mapping[str, Any],
    meta: Mapping[str, Any],
    labels: Mapping[str, Any],
    annotations: Mapping[str, Any],
    index: int,
    seed_index: int,
    now: datetime,
) -> TrialState:
    status = child.get("status") or {}
    phase = Phase(status.get("phase", Phase.PENDING.value))
    attempts = int(status.get("attempts") or 1)
    requested = annotations.get(ANNOTATION_ATTEMPT, "")
    if requested.isdigit() and int(requested) > attempts and phase.finished:
        # A retry asked for and not yet started: it already counts as under way.
        phase, attempts = Phase.PENDING, int(requested)
    paused = ANNOTATION_PAUSE in annotations or (
        phase is Phase.PAUSED and _held(annotations, status)
    )
    if phase is Phase.PAUSED and not paused:
        phase = Phase.PENDING  # a resume asked for and not yet started: under way too
    backend = status.get("backend") or ((child.get("spec") or {}).get("placement") or {}).get(
        "backend"
    )
    created = parse_time(meta.get("creationTimestamp"))
    waiting = (now - created).total_seconds() if created and phase in WAITING else 0.0
    return TrialState(
        name=meta["name"],
        index=index,
        seed_index=seed_index,
        parameters=_parameters(annotations.get(ANNOTATION_PARAMETERS) or "{}"),
        phase=phase,
        backend=Backend(backend) if backend else None,
        attempts=attempts,
        objective=_objective(status),
        history=decode_history(annotations.get(ANNOTATION_HISTORY, "")),
        waiting_seconds=max(0.0, waiting),
        stop_requested=ANNOTATION_STOP in annotations,
        pause_requested=paused,
        promotions=promotions(annotations),
        exploits=read_exploits(annotations),
    )


def _held(annotations: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Paused by its own pause point (`rlops.dev/pause-at`) rather than by a pause."""
    stop_reason = (status.get("result") or {}).get("stopReason")
    iteration = (status.get("progress") or {}).get("iteration")
    return reached_pause_point(annotations, stop_reason, iteration) is not None


def _parameters(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{ANNOTATION_PARAMETERS}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{ANNOTATION_PARAMETERS}: a JSON object is needed, not {text[:80]!r}")
    return value


def _objective(status: Mapping[str, Any]) -> float | None:
    result = status.get("result") or {}
    if result.get("finalObjective") is not None:
        return float(result["finalObjective"])
    progress = status.get("progress") or {}
    value = progress.get("episodeReturnMean")
    return float(value) if value is not None and status.get("phase") == "Succeeded" else None


def owner_reference(sweep: Sweep) -> dict[str, Any]:
    return {
        "apiVersion": sweep.api_version,
        "kind": sweep.kind,
        "name": sweep.metadata.name,
        "uid": sweep.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_manifest(trial: TrialPlan, sweep: Sweep) -> dict[str, Any]:
    """The RLExperiment of one planned trial."""
    annotations = {ANNOTATION_PARAMETERS: json.dumps(trial.parameters, sort_keys=True)}
    rung = pause_point(sweep.spec, 0)  # ASHA's promotion variant: where it first pauses
    if rung is not None:
        annotations[ANNOTATION_PAUSE_AT] = str(rung)
    metric = sweep.spec.objective.metric
    if metric != DEFAULT_METRIC:
        annotations[ANNOTATION_OBJECTIVE] = metric
    spec = trial.spec
    if spec.tracking is None and sweep.spec.tracking is not None:
        # The sweep's tracking applies to its trials, whichever driver runs them.
        spec = spec.model_copy(update={"tracking": sweep.spec.tracking})
    return {
        "apiVersion": sweep.api_version,
        "kind": "RLExperiment",
        "metadata": {
            "name": trial.name,
            "namespace": sweep.metadata.namespace,
            "labels": {**trial.labels, "app.kubernetes.io/managed-by": "rlops"},
            "annotations": annotations,
            "ownerReferences": [owner_reference(sweep)],
        },
        "spec": spec.dump(),
    }


@dataclass(frozen=True)
class SweepActions:
    create: list[dict[str, Any]]
    patches: list[tuple[str, dict[str, Any]]]  # child name -> merge patch of the child
    status: SweepStatus
    stopped: list[str]
    done: bool


def reconcile_sweep(
    sweep: Sweep, children: Sequence[Mapping[str, Any]], now: datetime
) -> SweepActions:
    """The engine's plan for the sweep, as manifests to create and patches to apply."""
    trials = [t for t in (trial_state(c, now) for c in children) if t is not None]
    outcome = plan(sweep.spec, sweep.metadata.name or "", trials, sweep.metadata.generation)
    return plan_actions(sweep, outcome, trials, children, now)


def plan_actions(
    sweep: Sweep,
    outcome: Plan,
    trials: Sequence[TrialState],
    children: Sequence[Mapping[str, Any]],
    now: datetime,
) -> SweepActions:
    """What the driver does for one plan; nothing asked already is asked again."""
    name = sweep.metadata.name
    assert name
    by_name = {t.name: t for t in trials}
    specs = {
        (c.get("metadata") or {}).get("name"): (c.get("spec") or {}).get("placement") or {}
        for c in children
    }

    patches: list[tuple[str, dict[str, Any]]] = []
    for trial_name in outcome.retry:
        attempt = by_name[trial_name].attempts + 1
        patches.append((trial_name, _annotate({ANNOTATION_ATTEMPT: str(attempt)})))
    stopped = [t for t in outcome.stop if not by_name[t].stop_requested]
    reason = f"stopped by sweep {name}"
    patches += [(t, _annotate({ANNOTATION_STOP: reason})) for t in stopped]
    why = "in the bottom quantile (pbt)" if is_pbt(sweep.spec) else "at an ASHA rung"
    paused = f"paused by sweep {name} {why}"
    patches += [
        (t, _annotate({ANNOTATION_PAUSE: paused}))
        for t in outcome.pause
        if not by_name[t].pause_requested
    ]
    exploits = {e.name: e for e in outcome.exploit}
    for trial_name in outcome.resume:
        trial = by_name[trial_name]
        if not trial.pause_requested:
            continue  # resumed already: the pause annotation is gone
        promoted = trial.promotions + 1
        changes = {ANNOTATION_PAUSE: None, ANNOTATION_PROMOTIONS: str(promoted)}
        if promotes(sweep.spec):  # the next rung it pauses at; None: its whole budget
            rung = pause_point(sweep.spec, promoted)
            changes[ANNOTATION_PAUSE_AT] = str(rung) if rung is not None else None
        patch = _annotate(changes)
        if trial_name in exploits:
            patch = exploit_patch(exploits[trial_name], trial.exploits, patch)
        patches.append((trial_name, patch))
    for trial_name, backend in outcome.move:
        base = PlacementSpec.model_validate(specs.get(trial_name) or {})
        placement = trial_placement(sweep.spec, base, backend).dump()
        patches.append((trial_name, {"spec": {"placement": placement}}))

    return SweepActions(
        create=[child_manifest(t, sweep) for t in outcome.create],
        patches=patches,
        status=_stamped(sweep, outcome.status, outcome.done, now, bool(trials or outcome.create)),
        stopped=stopped,
        done=outcome.done,
    )


def _annotate(annotations: Mapping[str, str | None]) -> dict[str, Any]:
    """A merge patch of a child's annotations (None removes one)."""
    return {"metadata": {"annotations": dict(annotations)}}


def _stamped(
    sweep: Sweep, status: SweepStatus, done: bool, now: datetime, started: bool
) -> SweepStatus:
    old = sweep.status or SweepStatus()
    when = timestamp(now)
    return status.model_copy(
        update={
            "started_at": old.started_at or (when if started else None),
            "completed_at": (old.completed_at or when) if done else None,
            "conditions": stamp_transitions(status.conditions, old.conditions, when),
        }
    )
