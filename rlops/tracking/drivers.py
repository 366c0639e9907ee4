"""`spec.tracking` for the cluster drivers: the operator and the SLURM bridge.

The operator is the driver on Kubernetes: every progress record a runtime POSTs, and its
final result, pass through `Controller.write_progress`; phases through the reconcilers.
The SLURM bridge reads each job's progress.jsonl and result.json at every poll. Both
describe a trial from its RLExperiment (labels, parameters annotation) and call
`KubeTracking`, which keeps one tracker per (URI, experiment name).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rlops.api import RLExperiment, Sweep, TrackingSpec
from rlops.api.annotations import ANNOTATION_PARAMETERS
from rlops.api.runinfo import ProgressRecord, RunResult
from rlops.sweep import LABEL_SWEEP, LABEL_TRIAL
from rlops.tracking import SweepSnapshot, TrialSnapshot

log = logging.getLogger(__name__)

Body = Mapping[str, Any]


def sweep_tracking(sweep: Body | None) -> TrackingSpec | None:
    if sweep is None:
        return None
    spec = sweep.get("spec") or {}
    raw = spec.get("tracking") or (spec.get("template") or {}).get("tracking")
    return TrackingSpec.model_validate(raw) if raw else None


def sweep_snapshot(sweep: Sweep) -> SweepSnapshot:
    status, meta = sweep.status, sweep.metadata
    best = status.best_trial if status else None
    return SweepSnapshot(
        name=meta.name or "",
        namespace=meta.namespace or "",
        phase=status.phase.value if status else "Pending",
        metric=sweep.spec.objective.metric,
        best_name=best.name if best else None,
        best_objective=best.objective if best else None,
        best_parameters=dict(best.parameters) if best else {},
        message=(status.message if status else None) or "",
    )


def trial_snapshot(
    experiment: RLExperiment,
    phase: str,
    records: Sequence[ProgressRecord] = (),
    result: RunResult | None = None,
    run_dir: str | None = None,
) -> TrialSnapshot:
    import json

    meta = experiment.metadata
    labels, annotations = meta.labels, meta.annotations
    sweep = labels.get(LABEL_SWEEP)
    index = labels.get(LABEL_TRIAL)
    return TrialSnapshot(
        name=meta.name or "",
        namespace=meta.namespace or "",
        phase=phase,
        sweep=sweep,
        configuration=f"{sweep}-{index}" if sweep and index is not None else None,
        seed=experiment.spec.seed,
        parameters=json.loads(annotations.get(ANNOTATION_PARAMETERS) or "{}"),
        records=list(records),
        result=result,
        run_dir=run_dir,
    )


def result_phase(result: RunResult | None, phase: str) -> str:
    """The phase a runtime's final result means (a requeue is not an end)."""
    if result is None:
        return phase
    return {"succeeded": "Succeeded", "failed": "Failed", "invalid": "Failed"}.get(
        result.status, phase
    )


class KubeTracking:
    """MLflow trackers by (URI, experiment name), made on first use."""

    def __init__(self) -> None:
        self.trackers: dict[tuple[str | None, str], Any] = {}
        self._lock = threading.Lock()  # The operator calls in from several worker threads.

    def _tracker(self, spec: TrackingSpec | None, default_experiment: str) -> Any:
        if spec is None or spec.mlflow is None:
            return None
        key = (spec.mlflow.tracking_uri, spec.mlflow.experiment_name or default_experiment)
        with self._lock:
            if key not in self.trackers:
                from rlops.tracking.mlflow import MlflowTracker

                self.trackers[key] = MlflowTracker(spec.mlflow, default_experiment)
            return self.trackers[key]

    @staticmethod
    def wanted(experiment: RLExperiment, sweep: Body | None) -> bool:
        own = experiment.spec.tracking
        chosen = own if own is not None and own.mlflow is not None else sweep_tracking(sweep)
        return chosen is not None and chosen.mlflow is not None

    def trial(self, experiment: RLExperiment, sweep: Body | None, snapshot: TrialSnapshot) -> None:
        """Record a trial's (or an experiment's) progress; raises after logging, so that the
        progress writer merges the records back and tries again."""
        own = experiment.spec.tracking
        chosen = own if own is not None and own.mlflow is not None else sweep_tracking(sweep)
        try:
            tracker = self._tracker(chosen, snapshot.sweep or snapshot.name)
            if tracker is None:
                return
            parent = None
            if sweep is not None:
                parent = tracker.sweep(sweep_snapshot(Sweep.model_validate(sweep)))
            elif snapshot.sweep:
                parent = tracker.parent(snapshot.namespace, snapshot.sweep)
            tracker.trial(snapshot, parent)
        except Exception:
            log.exception("tracking %s/%s failed; it is retried", snapshot.namespace, snapshot.name)
            raise

    def ended(self, experiment: RLExperiment, sweep: Body | None, snapshot: TrialSnapshot) -> None:
        """A phase the reconciler concluded (Stopped, a deleted RayJob): logged, not raised."""
        try:
            self.trial(experiment, sweep, snapshot)
        except Exception:
            return

    def sweep(self, sweep: Sweep) -> None:
        spec = sweep.spec.tracking or sweep.spec.template.tracking
        try:
            tracker = self._tracker(spec, sweep.metadata.name or "")
            if tracker is not None:
                tracker.sweep(sweep_snapshot(sweep))
        except Exception:
            log.exception("tracking sweep %s failed", sweep.metadata.name)
