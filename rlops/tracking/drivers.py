"""`spec.tracking` for the cluster drivers: the operator and the SLURM bridge.

The operator is the driver on Kubernetes: every progress record a runtime POSTs, and its
final result, pass through `Controller.write_progress`; phases through the reconcilers.
The SLURM bridge reads each job's progress.jsonl and result.json at every poll. Both
describe a trial from its RLExperiment (labels, parameters annotation) and call
`KubeTracking`, which keeps one tracker per (URI, experiment name) for MLflow and per
(project, directory) for W&B.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlops.api import RLExperiment, Sweep, TrackingSpec
from rlops.api.annotations import ANNOTATION_PARAMETERS
from rlops.api.ratelimit import ErrorLog
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


def chosen_tracking(experiment: RLExperiment, sweep: Body | None) -> TrackingSpec | None:
    """The experiment's own `spec.tracking` when it names a tracker, else its sweep's."""
    own = experiment.spec.tracking
    if own is not None and (own.mlflow or own.wandb) is not None:
        return own
    return sweep_tracking(sweep)


class KubeTracking:
    """MLflow trackers by (URI, experiment name) and W&B trackers by (project, directory),
    made on first use.

    W&B's offline files go to `spec.tracking.wandb.dir`, or else beside the trial's run
    directory as the runner writes them: the sweep's run directory for a trial, the
    experiment's own for a lone experiment.
    """

    def __init__(self) -> None:
        self.trackers: dict[tuple[str | None, ...], Any] = {}
        self._lock = threading.Lock()  # The operator calls in from several worker threads.
        self.errors = ErrorLog(log)  # a tracker that keeps failing: once per 5 min per object

    def _trackers(
        self, spec: TrackingSpec | None, default_experiment: str, snapshot: TrialSnapshot | None
    ) -> list[Any]:
        if spec is None:
            return []
        wanted: list[tuple[tuple[str | None, ...], Callable[[], Any]]] = []
        if spec.mlflow is not None:
            mlflow = spec.mlflow
            key: tuple[str | None, ...] = (
                "mlflow",
                mlflow.tracking_uri,
                mlflow.experiment_name or default_experiment,
            )

            def make_mlflow() -> Any:
                from rlops.tracking.mlflow import MlflowTracker

                return MlflowTracker(mlflow, default_experiment)

            wanted.append((key, make_mlflow))
        directory = wandb_directory(spec, snapshot)
        if spec.wandb is not None and directory is not None:
            wandb = spec.wandb
            project = wandb.project or default_experiment

            def make_wandb() -> Any:
                from rlops.tracking.wandb import WandbTracker

                return WandbTracker(wandb, project, directory)

            wanted.append((("wandb", project, str(directory)), make_wandb))
        with self._lock:
            for key, make in wanted:
                if key not in self.trackers:
                    self.trackers[key] = make()
            return [self.trackers[key] for key, _ in wanted]

    @staticmethod
    def wanted(experiment: RLExperiment, sweep: Body | None) -> bool:
        return chosen_tracking(experiment, sweep) is not None

    def trial(self, experiment: RLExperiment, sweep: Body | None, snapshot: TrialSnapshot) -> None:
        """Record a trial's (or an experiment's) progress; raises after logging, so that the
        progress writer merges the records back and tries again."""
        chosen = chosen_tracking(experiment, sweep)
        try:
            for tracker in self._trackers(chosen, snapshot.sweep or snapshot.name, snapshot):
                parent = None
                if sweep is not None:
                    parent = tracker.sweep(sweep_snapshot(Sweep.model_validate(sweep)))
                elif snapshot.sweep:
                    parent = tracker.parent(snapshot.namespace, snapshot.sweep)
                tracker.trial(snapshot, parent)
        except Exception as exc:
            key = f"{snapshot.namespace}/{snapshot.name}"
            why = type(exc).__name__  # the traceback says more; a new kind is logged at once
            self.errors.log(key, f"tracking {key} failed ({why}); it is retried", exc=exc)
            raise
        self.errors.forget(f"{snapshot.namespace}/{snapshot.name}")

    def ended(self, experiment: RLExperiment, sweep: Body | None, snapshot: TrialSnapshot) -> None:
        """A phase the reconciler concluded (Stopped, a deleted RayJob): logged, not raised."""
        try:
            self.trial(experiment, sweep, snapshot)
        except Exception:
            return

    def sweep(self, sweep: Sweep) -> None:
        """The sweep's own run (MLflow's parent run; W&B has none: the sweep is a group)."""
        spec = sweep.spec.tracking or sweep.spec.template.tracking
        try:
            for tracker in self._trackers(spec, sweep.metadata.name or "", None):
                tracker.sweep(sweep_snapshot(sweep))
        except Exception as exc:
            key = f"sweep {sweep.metadata.namespace}/{sweep.metadata.name}"
            self.errors.log(key, f"tracking {key} failed ({type(exc).__name__})", exc=exc)


def wandb_directory(spec: TrackingSpec, snapshot: TrialSnapshot | None) -> Path | None:
    """Where a driver's W&B offline files go (None: not known yet, nothing to write)."""
    if spec.wandb is None:
        return None
    if spec.wandb.dir:
        return Path(spec.wandb.dir)
    if snapshot is None or not snapshot.run_dir:
        return None
    run_dir = Path(snapshot.run_dir)
    return run_dir.parent if snapshot.sweep else run_dir
