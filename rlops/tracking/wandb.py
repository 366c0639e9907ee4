"""Weights & Biases, from the driver: one W&B run per trial, grouped by sweep.

- `group` = the sweep, `job_type` = the configuration (`<sweep>-<index>`), `name` = the
  trial, `id` = a stable hash of the trial's identity, so a requeued or resumed attempt
  (or a restarted runner) continues the same run (`resume="allow"`);
- `config` = the trial's parameters and seed; tags `sweep:`, `trial:`, `seed:`,
  `configuration:`;
- metrics logged per iteration with the timesteps as the step;
- at the end the summary gets the phase, the best return and the checkpoint paths, and
  the run finishes (exit code 0 when it succeeded).

`mode: offline` (the default) writes W&B's run files under `dir` (default: the run
directory) for a later `wandb sync`. W&B has no parent runs: the sweep is the group.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from rlops.api.tracking import WandbTracking
from rlops.tracking.mlflow import checkpoint_path
from rlops.tracking.snapshots import SweepSnapshot, TrialSnapshot


def run_id(key: str) -> str:
    """A W&B run id (lowercase letters and digits) that is the same for the same trial."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


class WandbTracker:
    def __init__(self, config: WandbTracking, default_project: str, directory: Path) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.wandb = wandb
        self.config = config
        self.project = config.project or default_project
        self.directory = Path(config.dir) if config.dir else directory
        self.runs: dict[str, Any] = {}
        self.last_step: dict[str, int] = {}
        self.finished: set[str] = set()

    def sweep(self, sweep: SweepSnapshot) -> None:
        """Nothing to record: the sweep is its trials' group."""
        return None

    def parent(self, namespace: str, sweep: str) -> None:
        """No parent run either (MLflow's trackers find the sweep's run here)."""
        return None

    def trial(self, trial: TrialSnapshot, parent: Any = None) -> None:
        if trial.key in self.finished:
            return
        run = self.runs.get(trial.key)
        if run is None:
            if not trial.records and not trial.finished:
                return  # Not started: no run yet.
            run = self._start(trial)
        last = self.last_step.get(trial.key, -1)
        for r in trial.records:
            if r.timesteps <= last:
                continue
            values: dict[str, float] = {"iteration": r.iteration, "time_seconds": r.time_seconds}
            values.update(r.metrics)
            if r.episode_return_mean is not None:
                values["episode_return_mean"] = r.episode_return_mean
            run.log(values, step=r.timesteps)
            last = r.timesteps
        self.last_step[trial.key] = last
        if trial.finished:
            run.summary["phase"] = trial.phase
            result = trial.result
            if result is not None:
                if result.best_episode_return_mean is not None:
                    run.summary["best_episode_return_mean"] = result.best_episode_return_mean
                for name in ("best_checkpoint", "last_checkpoint"):
                    path = checkpoint_path(getattr(result, name), trial.run_dir)
                    if path:
                        run.summary[name] = path
            run.finish(exit_code=0 if trial.phase == "Succeeded" else 1)
            self.runs.pop(trial.key)
            self.finished.add(trial.key)

    def _start(self, trial: TrialSnapshot) -> Any:
        self.directory.mkdir(parents=True, exist_ok=True)
        tags = [f"trial:{trial.name}"]
        if trial.sweep:
            tags.append(f"sweep:{trial.sweep}")
        if trial.configuration:
            tags.append(f"configuration:{trial.configuration}")
        if trial.seed is not None:
            tags.append(f"seed:{trial.seed}")
        config = dict(trial.parameters)
        if trial.seed is not None:
            config["seed"] = trial.seed
        run = self.wandb.init(
            mode=self.config.mode,
            dir=str(self.directory),
            project=self.project,
            entity=self.config.entity,
            group=trial.sweep,
            job_type=trial.configuration,
            name=trial.name,
            id=run_id(trial.key),
            resume="allow",
            config=config,
            tags=tags,
            reinit="create_new",
        )
        self.runs[trial.key] = run
        return run

    def close(self) -> None:
        for run in self.runs.values():
            run.finish(exit_code=1)
        self.runs.clear()
