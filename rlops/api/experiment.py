"""The RLExperiment resource: one RLlib training run (its placement: `rlops.api.placement`)."""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import Field

from rlops.api.base import Model
from rlops.api.meta import Condition, ObjectMeta
from rlops.api.placement import (
    Backend,
    ContainerRuntime,
    KubernetesPlacement,
    PlacementSpec,
    SlurmPlacement,
    Toleration,
)
from rlops.api.tracking import TrackingSpec

__all__ = [
    "Backend", "BackendRef", "CheckpointSpec", "ContainerRuntime", "EnvironmentSpec",
    "ExperimentResult", "ExploitSource", "KubernetesPlacement", "Phase", "PlacementSpec",
    "Progress", "RLExperiment", "RLExperimentSpec", "RLExperimentStatus", "ResourcesSpec",
    "SlurmPlacement", "StopSpec", "StorageSpec", "Toleration",
]  # fmt: skip


class Phase(enum.StrEnum):
    """The one phase enum of an RLExperiment, whatever its backend."""

    PENDING = "Pending"
    SUBMITTED = "Submitted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    PAUSED = "Paused"  # Checkpointed and ended on request; a sweep may resume it.

    @property
    def finished(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED)


class EnvironmentSpec(Model):
    """The environment to train on: a Gymnasium id or a custom creator."""

    id: str | None = Field(
        default=None,
        description="A registered Gymnasium environment id, e.g. `CartPole-v1`.",
    )
    entry_point: str | None = Field(
        default=None,
        description=(
            "A custom environment creator as `package.module:callable`. It is registered "
            "with RLlib's `register_env` and called with `config`."
        ),
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="The env_config passed to the environment (or its creator).",
    )


class ResourcesSpec(Model):
    """What the training run needs. Backends size pods, allocations or local slots from it."""

    env_runners: int = Field(
        default=0,
        description=(
            "Remote RLlib env runners (sampling workers). 0 samples in the driver process."
        ),
    )
    envs_per_runner: int = Field(default=1, description="Vectorised environments per env runner.")
    cpus_per_runner: float = Field(default=1.0, description="CPUs reserved per env runner.")
    learners: int = Field(
        default=0, description="Remote RLlib learners. 0 trains in the driver process."
    )
    gpus_per_learner: float = Field(
        default=0.0, description="GPUs per learner (fractions share one GPU between trials)."
    )
    driver_cpus: float = Field(default=1.0, description="CPUs reserved for the driver process.")
    nodes: int = Field(
        default=1,
        description="Ray cluster nodes (Kubernetes: a head and nodes-1 workers; SLURM: --nodes).",
    )
    memory: str | None = Field(
        default=None,
        description="Memory per node as a Kubernetes quantity, e.g. `4Gi` (SLURM: --mem).",
    )

    def total_cpus(self) -> float:
        """CPUs the run occupies in all, driver included."""
        return self.driver_cpus + self.env_runners * self.cpus_per_runner

    def total_gpus(self) -> float:
        return max(self.learners, 1) * self.gpus_per_learner


class StopSpec(Model):
    """When training ends: the first criterion met stops the run."""

    timesteps: int | None = Field(default=None, description="Total env steps sampled.")
    episode_return_mean: float | None = Field(
        default=None, description="Mean episode return reached (the run succeeds early)."
    )
    iterations: int | None = Field(default=None, description="Training iterations.")
    wall_time_seconds: float | None = Field(
        default=None, description="Wall-clock seconds of training, summed over attempts."
    )

    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.timesteps,
                self.episode_return_mean,
                self.iterations,
                self.wall_time_seconds,
            )
        )


class ExploitSource(Model):
    """Population-based training: continue from another trial's latest checkpoint."""

    source: str = Field(
        description="The run directory whose latest checkpoint is copied (relative: to this run's)."
    )
    iteration: int = Field(
        description="This run's iteration at the exploit; the copy is made once for it."
    )


class CheckpointSpec(Model):
    """How checkpoints are kept, as RLlib's Tune checkpoint config does."""

    frequency: int = Field(
        default=0, description="Checkpoint every N training iterations (0: only at the end)."
    )
    keep: int | None = Field(
        default=None, description="Keep the N best checkpoints by `scoreAttribute` (all if unset)."
    )
    score_attribute: str = Field(
        default="env_runners/episode_return_mean",
        description="Result key, `/`-separated, that ranks checkpoints.",
    )
    score_order: Literal["max", "min"] = Field(
        default="max", description="Whether a higher or lower score is better."
    )
    at_end: bool = Field(default=True, description="Write a checkpoint when training ends.")
    resume_from: str | None = Field(
        default=None,
        description="A checkpoint directory to start from instead of fresh weights.",
    )
    exploit: ExploitSource | None = Field(
        default=None,
        description=(
            "Set by a PBT sweep: before it resumes, the run copies the source run's latest "
            "checkpoint in as its own (its counters stay its own)."
        ),
    )


class StorageSpec(Model):
    """Where checkpoints and results go."""

    path: str | None = Field(
        default=None,
        description=(
            "A shared path or an object-store URI (`s3://bucket/prefix`, `gs://bucket/prefix`) "
            "under which the run directory `<namespace>/<name>` goes; defaults per backend. "
            "In an object store the runtime trains in a local scratch directory and mirrors "
            "checkpoints and results to the store, resuming from there."
        ),
    )
    persistent_volume_claim: str | None = Field(
        default=None,
        description=(
            "Kubernetes: a PersistentVolumeClaim (ReadWriteMany for several nodes) mounted at "
            "`path` (else the operator's storage path) in the head, worker and submitter pods, "
            "so run directories outlive the RayJob; it replaces the operator's storage claim."
        ),
    )


class RLExperimentSpec(Model):
    """One RLlib training run."""

    image: str | None = Field(
        default=None,
        description="Container image with rlops, Ray and the user's code (operator default).",
    )
    algorithm: str | None = Field(
        default=None,
        description=(
            "An RLlib algorithm name: PPO, APPO, IMPALA, DQN, SAC, ... Exactly one of "
            "`algorithm` and `command`."
        ),
    )
    command: list[str] | None = Field(
        default=None,
        description=(
            "A training program of your own instead of RLlib: its argv (`python` as the first "
            "word is the runtime's interpreter). It follows the command-trainer contract "
            "(docs/command-trainers.md); `{config.a.b}`, `{overrides}`, `{seed}`, `{runDir}` "
            "in an argument are replaced."
        ),
    )
    environment: EnvironmentSpec | None = Field(
        default=None, description="The environment to train on (RLlib algorithms only)."
    )
    config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "RLlib: AlgorithmConfig settings grouped by the config's method names (`training`, "
            "`env_runners`, `rl_module`, ...); each group is applied by calling that method. "
            "A command trainer: any mapping, handed to the program as JSON."
        ),
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Runners, learners, GPUs, nodes, memory."
    )
    stop: StopSpec = Field(
        default_factory=StopSpec,
        description="Stop criteria: at least one for RLlib; a command trainer may end by itself.",
    )
    checkpoint: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="Checkpoint frequency and retention."
    )
    seed: int | None = Field(default=None, description="Random seed of the run.")
    placement: PlacementSpec = Field(
        default_factory=PlacementSpec, description="Backend and per-backend settings."
    )
    storage: StorageSpec = Field(
        default_factory=StorageSpec, description="Where checkpoints and results go."
    )
    tracking: TrackingSpec | None = Field(
        default=None, description="Experiment trackers (MLflow) the driver records the run in."
    )

    def trainer_summary(self) -> str:
        """What trains, in a few words: `PPO on CartPole-v1`, `command python train.py`."""
        if self.command is not None:
            return "command " + " ".join(self.command[:3])
        env = self.environment
        where = (env.id if env is not None else None) or "a custom env"
        return f"{self.algorithm} on {where}"


class BackendRef(Model):
    """What the experiment became on its backend."""

    kind: Literal["RayJob", "SlurmJob", "Process"] = Field(description="The kind of object.")
    name: str | None = Field(default=None, description="RayJob name.")
    namespace: str | None = Field(default=None, description="RayJob namespace.")
    cluster: str | None = Field(default=None, description="SLURM cluster.")
    job_id: str | None = Field(default=None, description="SLURM job id.")
    pid: int | None = Field(default=None, description="Local process id.")


class Progress(Model):
    """Training progress, at most ~30 s behind training."""

    iteration: int = Field(default=0, description="Training iterations done.")
    timesteps: int = Field(default=0, description="Env steps sampled in all.")
    episode_return_mean: float | None = Field(default=None, description="Latest mean return.")
    time_seconds: float = Field(default=0.0, description="Training wall time in all.")
    updated_at: str | None = Field(default=None, description="When this was last updated.")
    percent: float | None = Field(
        default=None, description="Percent of the stop budget used (the furthest criterion)."
    )


class ExperimentResult(Model):
    """The outcome of training."""

    final_objective: float | None = Field(default=None, description="Objective at the end.")
    best_objective: float | None = Field(default=None, description="Best objective seen.")
    best_checkpoint: str | None = Field(default=None, description="Path of the best checkpoint.")
    stop_reason: str | None = Field(default=None, description="Which stop criterion ended it.")


class RLExperimentStatus(Model):
    """The one status shape of an RLExperiment, whatever its backend."""

    phase: Phase = Field(default=Phase.PENDING, description="Where the experiment is.")
    backend: Backend | None = Field(default=None, description="Where it runs.")
    backend_ref: BackendRef | None = Field(default=None, description="Its object on the backend.")
    progress: Progress | None = Field(default=None, description="Training progress.")
    result: ExperimentResult | None = Field(default=None, description="The outcome.")
    attempts: int = Field(default=0, description="Attempts started (retries and requeues).")
    message: str | None = Field(default=None, description="A human-readable reason.")
    started_at: str | None = Field(default=None, description="When training started.")
    completed_at: str | None = Field(default=None, description="When it finished.")
    observed_generation: int | None = Field(
        default=None, description="The spec generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Reconciling, Stalled (kstatus)."
    )


class RLExperiment(Model):
    """An RLExperiment resource."""

    api_version: Literal["rlops.dev/v1alpha1"] = Field(
        default="rlops.dev/v1alpha1", description="rlops.dev/v1alpha1"
    )
    kind: Literal["RLExperiment"] = Field(default="RLExperiment", description="RLExperiment")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: RLExperimentSpec = Field(description="What to train.")
    status: RLExperimentStatus | None = Field(default=None, description="What happened.")
