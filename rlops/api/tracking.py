"""`spec.tracking`: where an experiment's (or a sweep's) runs are also recorded.

Tracking is done by the driver (the `rlops run` runner, the operator, the SLURM bridge),
never by the training process, so compute nodes without network access are tracked too.
"""

from __future__ import annotations

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


class TrackingSpec(Model):
    """Experiment trackers to record runs in (a Sweep's setting applies to its trials)."""

    mlflow: MlflowTracking | None = Field(
        default=None, description="Record runs, parameters and metrics in MLflow."
    )
