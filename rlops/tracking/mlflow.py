"""MLflow: a Sweep is a parent run, each trial a child run (`mlflow.parentRunId`).

- tags `sweep`, `trial`, `seed`, `configuration` (and `rlops.key`, the identity by which
  a run is found again, `rlops.phase`);
- params: the trial's sampled parameters (and its seed);
- metrics per iteration with the timesteps as the step: `episode_return_mean`,
  `iteration`, `time_seconds` and the runtime's other scalars;
- at the end: `best_episode_return_mean` and the tags `best_checkpoint` and
  `last_checkpoint`, and the run terminated FINISHED, FAILED or KILLED (stopped).
  A sweep's parent run gets `best_trial`, `best_objective` and the best parameters.

The URI is `spec.tracking.mlflow.trackingUri`, else `MLFLOW_TRACKING_URI` of the driver,
as in MLflow. The client (`mlflow-skinny`) is imported when a tracker is made.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from rlops.api.tracking import MlflowTracking
from rlops.tracking.snapshots import SweepSnapshot, TrackingError, TrialSnapshot

KEY_TAG = "rlops.key"
PHASE_TAG = "rlops.phase"
END_STATUS = {"Succeeded": "FINISHED", "Failed": "FAILED", "Stopped": "KILLED"}
BATCH = 1000  # MLflow's limit of metrics per log_batch call.


def tracking_uri(config: MlflowTracking) -> str:
    uri = config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise TrackingError(
            "spec.tracking.mlflow.trackingUri: not set, and MLFLOW_TRACKING_URI is not set "
            "where the driver runs; set one of them"
        )
    return uri


def checkpoint_path(path: str | None, run_dir: str | None) -> str | None:
    """A checkpoint as a full path or URI (the runtime writes them relative to the run dir)."""
    if not path or not run_dir or "://" in path or path.startswith("/"):
        return path
    return f"{run_dir.rstrip('/')}/{path}"


class MlflowTracker:
    """Brings one MLflow experiment up to date with snapshots (idempotent, resumable)."""

    def __init__(self, config: MlflowTracking, default_experiment: str) -> None:
        # A driver must not hang on a server that is down: few retries, a short timeout
        # (MLflow's defaults: 7 retries with backoff, 120 s); the variables still win.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow.tracking import MlflowClient

        self.uri = tracking_uri(config)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_name = config.experiment_name or default_experiment
        self._experiment_id: str | None = None
        self._lock = threading.RLock()
        self._runs: dict[str, str] = {}  # rlops.key -> run id
        self._last_step: dict[str, int] = {}  # rlops.key -> last timesteps logged
        self._phase: dict[str, str] = {}  # rlops.key -> phase last written
        self._final: dict[str, int] = {}  # rlops.key -> attempt whose final result is logged

    # --- runs ------------------------------------------------------------------------------

    def experiment_id(self) -> str:
        with self._lock:
            return self._experiment()

    def _experiment(self) -> str:
        if self._experiment_id is None:
            from mlflow.exceptions import MlflowException

            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is None:
                try:
                    self._experiment_id = self.client.create_experiment(self.experiment_name)
                except MlflowException:  # Created meanwhile by another driver.
                    found = self.client.get_experiment_by_name(self.experiment_name)
                    assert found is not None
                    self._experiment_id = found.experiment_id
            else:
                self._experiment_id = found.experiment_id
        return self._experiment_id

    def run_id(self, key: str, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        """The run tagged `rlops.key=key`, created (under `parent`) if there is none."""
        with self._lock:  # Find-or-create is one step for the driver's threads.
            if key not in self._runs:
                self._runs[key] = self._find_or_create(key, name, tags, parent)
            return self._runs[key]

    def _find_or_create(self, key: str, name: str, tags: dict[str, str], parent: str | None) -> str:
        quoted = key.replace("'", "\\'")
        found = self.client.search_runs(
            [self.experiment_id()], filter_string=f"tags.`{KEY_TAG}` = '{quoted}'", max_results=1
        )
        if found:
            run_id: str = found[0].info.run_id
            history = self.client.get_metric_history(run_id, "iteration")
            self._last_step[key] = max((m.step for m in history), default=-1)
        else:
            tags = {**tags, KEY_TAG: key}
            if parent:
                tags["mlflow.parentRunId"] = parent
            run = self.client.create_run(self.experiment_id(), tags=tags, run_name=name)
            run_id = run.info.run_id
            self._last_step[key] = -1
        return run_id

    # --- a sweep -------------------------------------------------------------------------

    def parent(self, namespace: str, sweep: str) -> str:
        """The sweep's parent run, found or created, left as it is (for a driver that sees
        the trials but not the Sweep, such as the SLURM bridge)."""
        return self.run_id(f"{namespace}/{sweep}", sweep, {"sweep": sweep})

    def sweep(self, sweep: SweepSnapshot) -> str:
        """The sweep's parent run, brought up to date; its id."""
        run_id = self.run_id(sweep.key, sweep.name, {"sweep": sweep.name})
        if self._phase.get(sweep.key) == sweep.phase:
            return run_id
        from mlflow.entities import Metric, Param, RunTag

        tags = [RunTag(PHASE_TAG, sweep.phase)]
        metrics, params = [], []
        if sweep.phase in END_STATUS and sweep.best_name:
            tags.append(RunTag("best_trial", sweep.best_name))
            params = [Param(f"best.{k}", str(v)) for k, v in sorted(sweep.best_parameters.items())]
            if sweep.best_objective is not None:
                now = int(time.time() * 1000)
                metrics.append(Metric("best_objective", sweep.best_objective, now, 0))
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        self._set_status(run_id, sweep.phase)
        self._phase[sweep.key] = sweep.phase
        return run_id

    # --- a trial ---------------------------------------------------------------------------

    def trial(self, trial: TrialSnapshot, parent: str | None = None) -> str:
        """The trial's run (a child of `parent`), brought up to date; its id."""
        from mlflow.entities import Metric, Param, RunTag

        tags = {"trial": trial.name}
        if trial.sweep:
            tags["sweep"] = trial.sweep
        if trial.configuration:
            tags["configuration"] = trial.configuration
        if trial.seed is not None:
            tags["seed"] = str(trial.seed)
        fresh = trial.key not in self._runs
        run_id = self.run_id(trial.key, trial.name, tags, parent)
        if fresh:  # Params are immutable in MLflow: the same values again are accepted.
            params = [Param(k, str(v)) for k, v in sorted(trial.parameters.items())]
            if trial.seed is not None:
                params.append(Param("seed", str(trial.seed)))
            self.client.log_batch(run_id, params=params)
        last = self._last_step.get(trial.key, -1)
        metrics = []
        for r in trial.records:
            if r.timesteps <= last:
                continue
            stamp = int(r.timestamp * 1000)
            values = {"iteration": float(r.iteration), "time_seconds": r.time_seconds, **r.metrics}
            if r.episode_return_mean is not None:
                values["episode_return_mean"] = r.episode_return_mean
            metrics += [Metric(k, float(v), stamp, r.timesteps) for k, v in values.items()]
            last = r.timesteps
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + BATCH])
        self._last_step[trial.key] = last
        result = trial.result
        if trial.finished and result is not None and self._final.get(trial.key) != result.attempt:
            now = int(time.time() * 1000)
            final: list[Any] = []
            if result.best_episode_return_mean is not None:
                value = result.best_episode_return_mean
                final.append(Metric("best_episode_return_mean", value, now, result.timesteps))
            tags_final = [RunTag("rlops.result", result.message or result.status)]
            for name in ("best_checkpoint", "last_checkpoint"):
                path = checkpoint_path(getattr(result, name), trial.run_dir)
                if path:
                    tags_final.append(RunTag(name, path))
            self.client.log_batch(run_id, metrics=final, tags=tags_final)
            self._final[trial.key] = result.attempt
        if self._phase.get(trial.key) != trial.phase:
            self.client.log_batch(run_id, tags=[RunTag(PHASE_TAG, trial.phase)])
            self._set_status(run_id, trial.phase)
            self._phase[trial.key] = trial.phase
        return run_id

    def _set_status(self, run_id: str, phase: str) -> None:
        if phase in END_STATUS:
            self.client.set_terminated(run_id, END_STATUS[phase])
        else:  # Running again after a requeue, a retry or a resume: the same run goes on.
            self.client.update_run(run_id, status="RUNNING")
