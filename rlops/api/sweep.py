"""The Sweep resource: a hyperparameter search over RLExperiments."""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import Field

from rlops.api.base import Model
from rlops.api.experiment import (
    KubernetesPlacement,
    RLExperimentSpec,
    SlurmPlacement,
)
from rlops.api.meta import Condition, ObjectMeta
from rlops.api.tracking import TrackingSpec


class DistributionType(enum.StrEnum):
    GRID = "grid"
    CHOICE = "choice"
    UNIFORM = "uniform"
    LOGUNIFORM = "loguniform"
    INT = "int"
    RANDINT = "randint"
    NORMAL = "normal"
    TRUNCNORMAL = "truncnormal"


class Distribution(Model):
    """One parameter's search space. Which fields apply depends on `type`."""

    type: DistributionType = Field(
        description=(
            "grid (every value, crossed with other grid keys), choice, uniform, loguniform, "
            "int/randint (integers in [low, high]), normal, truncnormal (normal in [low, high])."
        )
    )
    values: list[Any] | None = Field(default=None, description="grid and choice: the values.")
    low: float | None = Field(default=None, description="Lower bound.")
    high: float | None = Field(default=None, description="Upper bound.")
    mean: float | None = Field(default=None, description="normal/truncnormal: the mean.")
    std: float | None = Field(
        default=None, description="normal/truncnormal: the standard deviation."
    )
    step: float | None = Field(
        default=None, description="Quantisation: samples are rounded to multiples of `step`."
    )


class SearchAlgorithm(enum.StrEnum):
    GRID = "grid"
    RANDOM = "random"
    TPE = "tpe"
    PBT = "pbt"


class Objective(Model):
    """What the sweep optimises."""

    metric: str = Field(
        default="episode_return_mean",
        description="A progress metric: episode_return_mean (default), or a result key.",
    )
    mode: Literal["max", "min"] = Field(default="max", description="max or min.")
    goal: float | None = Field(
        default=None, description="Reaching it (by a configuration's mean) ends the sweep early."
    )


class EarlyStoppingType(enum.StrEnum):
    MEDIAN = "median"
    ASHA = "asha"


class AshaVariant(enum.StrEnum):
    STOPPING = "stopping"
    PROMOTION = "promotion"


class EarlyStopping(Model):
    """Stop trials that do worse than their peers, from intermediate progress."""

    type: EarlyStoppingType = Field(description="median or asha.")
    variant: AshaVariant = Field(
        default=AshaVariant.STOPPING,
        description=(
            "asha: `stopping` judges a trial as it passes each rung and stops it there or lets "
            "it go on; `promotion` pauses every trial at each rung (checkpointed) and resumes "
            "only the top 1/reduction_factor of the trials that reached the rung."
        ),
    )
    grace_period: int = Field(default=3, description="Iterations before a trial can be stopped.")
    reduction_factor: float = Field(
        default=3.0, description="asha: keep the top 1/reduction_factor at each rung."
    )
    max_iterations: int | None = Field(
        default=None, description="asha: the maximum budget (default: template's stop.iterations)."
    )
    min_trials: int = Field(
        default=3, description="Trials that must have reached a milestone before comparing."
    )


class PopulationBasedTraining(Model):
    """algorithm pbt: a population of maxTrials trials that exploit and explore as they train."""

    perturbation_interval: int = Field(
        default=5,
        description="Iterations a trial trains between two chances to exploit a better one.",
    )
    quantile_fraction: float = Field(
        default=0.25,
        description=(
            "A trial in the bottom fraction (by its latest objective) copies the checkpoint of "
            "one in the top fraction; at most 0.5."
        ),
    )
    resample_probability: float = Field(
        default=0.25,
        description=(
            "Explore: each parameter is resampled from its distribution with this probability, "
            "else perturbed (x0.8 or x1.2; grid/choice: a neighbouring value)."
        ),
    )


class Exploit(Model):
    """One exploit of a PBT trial: where its weights and parameters came from."""

    iteration: int = Field(description="The trial's iteration when it exploited.")
    source: str = Field(description="The trial whose checkpoint it continued from.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Its parameters from then on (explored)."
    )


class SweepBackend(enum.StrEnum):
    KUBERNETES = "kubernetes"
    SLURM = "slurm"
    LOCAL = "local"
    BURST = "burst"


class SweepPlacement(Model):
    """Where the trials run; `burst` fills Kubernetes first and overflows to SLURM."""

    backend: SweepBackend | None = Field(
        default=None, description="kubernetes, slurm, local or burst (default: the template's)."
    )
    kubernetes: KubernetesPlacement | None = Field(
        default=None, description="Kubernetes settings (burst: `maxParallel`)."
    )
    slurm: SlurmPlacement | None = Field(default=None, description="SLURM settings.")
    burst_after_seconds: int | None = Field(
        default=None,
        description="burst: a trial waiting this long on Kubernetes is moved to SLURM.",
    )


class SweepSpec(Model):
    """A hyperparameter search."""

    template: RLExperimentSpec = Field(description="The RLExperiment every trial starts from.")
    parameters: dict[str, Distribution] = Field(
        default_factory=dict,
        description=(
            "Dotted path into the template (list elements by index, e.g. "
            "`config.rl_module.model_config.fcnet_hiddens.0`) -> its distribution."
        ),
    )
    paired: list[list[str]] = Field(
        default_factory=list,
        description="Groups of grid keys whose values are zipped instead of crossed.",
    )
    algorithm: SearchAlgorithm = Field(
        default=SearchAlgorithm.GRID,
        description="grid, random, tpe (Optuna) or pbt (population-based training).",
    )
    pbt: PopulationBasedTraining | None = Field(
        default=None, description="algorithm pbt: its settings (defaults if unset)."
    )
    seed: int = Field(default=0, description="Seed of the search (sampling is deterministic).")
    objective: Objective = Field(default_factory=Objective, description="What is optimised.")
    max_trials: int | None = Field(
        default=None, description="Configurations to try (grid: the product by default)."
    )
    parallelism: int = Field(default=1, description="Trials running at once, at most.")
    max_failed_trials: int | None = Field(
        default=None, description="The sweep fails when more trials than this have failed."
    )
    max_attempts: int = Field(default=1, description="Attempts per trial (1: no retries).")
    seeds_per_trial: int = Field(
        default=1, description="Runs per configuration with different seeds; objective is the mean."
    )
    early_stopping: EarlyStopping | None = Field(default=None, description="median or asha.")
    placement: SweepPlacement = Field(
        default_factory=SweepPlacement, description="Where trials run."
    )
    tracking: TrackingSpec | None = Field(
        default=None,
        description="Experiment trackers: the sweep is a parent run, its trials child runs.",
    )


class SweepPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


class TrialSummary(Model):
    """One configuration in the leaderboard."""

    name: str = Field(description="Trial name (the configuration's first seed).")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Sampled values.")
    objective: float | None = Field(default=None, description="Mean objective over its seeds.")
    exploits: list[Exploit] = Field(
        default_factory=list, description="pbt: its exploits, oldest first."
    )


class TrialCounts(Model):
    """Trials by phase."""

    total: int = Field(default=0, description="Trials created.")
    pending: int = Field(default=0, description="Pending or submitted.")
    running: int = Field(default=0, description="Running.")
    succeeded: int = Field(default=0, description="Succeeded.")
    failed: int = Field(default=0, description="Failed (after all attempts).")
    stopped: int = Field(default=0, description="Stopped early.")
    paused: int = Field(default=0, description="Paused at an ASHA rung, awaiting promotion.")


class SweepStatus(Model):
    """A status that stays small whatever the number of trials."""

    phase: SweepPhase = Field(default=SweepPhase.PENDING, description="Where the sweep is.")
    trials: TrialCounts = Field(default_factory=TrialCounts, description="Trials by phase.")
    backends: dict[str, int] = Field(
        default_factory=dict, description="Trials by backend (kubernetes, slurm, local)."
    )
    best_trial: TrialSummary | None = Field(default=None, description="The best configuration.")
    top: list[TrialSummary] = Field(
        default_factory=list, description="The best few configurations, best first."
    )
    message: str | None = Field(default=None, description="A human-readable reason.")
    started_at: str | None = Field(default=None, description="When the first trial was created.")
    completed_at: str | None = Field(default=None, description="When the sweep finished.")
    observed_generation: int | None = Field(default=None, description="Generation observed.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Reconciling, Stalled (kstatus)."
    )


class Sweep(Model):
    """A Sweep resource."""

    api_version: Literal["rlops.dev/v1alpha1"] = Field(
        default="rlops.dev/v1alpha1", description="rlops.dev/v1alpha1"
    )
    kind: Literal["Sweep"] = Field(default="Sweep", description="Sweep")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: SweepSpec = Field(description="The search.")
    status: SweepStatus | None = Field(default=None, description="Its progress.")
