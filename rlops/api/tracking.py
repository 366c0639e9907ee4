"""`spec.tracking`: where an experiment's (or a sweep's) runs are also recorded.

Tracking is done by the driver (the `rlops run` runner, the operator, the SLURM bridge),
never by the training process, so compute nodes without network access are tracked too.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlops.api.base import Model


class MlflowTracking(Model):
    """An MLflow tracking server: a Sweep is a parent run, each trial a child run."""

    tracking_uri: str | None = Field(
        default=None,
        description=(
            "Tracking URI (`http://mlflow:5000`, `file:///path`). Default: the driver's "
            "`MLFLOW_TRACKING_URI`, as in MLflow itself."
        ),
    )
    experiment_name: str | None = Field(
        default=None,
        description="MLflow experiment of the runs. Default: the Sweep's or RLExperiment's name.",
    )


class WandbTracking(Model):
    """Weights & Biases: group = the sweep, job_type = the configuration, a run per trial."""

    project: str | None = Field(
        default=None, description="W&B project. Default: the Sweep's or RLExperiment's name."
    )
    entity: str | None = Field(default=None, description="W&B entity (team or user).")
    mode: Literal["offline", "online"] = Field(
        default="offline",
        description="offline writes run files to `dir` (upload later with `wandb sync`).",
    )
    dir: str | None = Field(
        default=None, description="Where W&B writes its files. Default: the run directory."
    )


class TrackingSpec(Model):
    """Experiment trackers to record runs in (a Sweep's setting applies to its trials)."""

    mlflow: MlflowTracking | None = Field(
        default=None, description="Record runs, parameters and metrics in MLflow."
    )
    wandb: WandbTracking | None = Field(
        default=None,
        description="Record runs in Weights & Biases (from whichever driver runs the trial).",
    )
