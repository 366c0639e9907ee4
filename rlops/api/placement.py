"""Where an RLExperiment runs: its backend and each backend's placement settings."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, field_validator

from rlops.api.base import Model


class Backend(enum.StrEnum):
    KUBERNETES = "kubernetes"
    SLURM = "slurm"
    LOCAL = "local"


class Toleration(Model):
    """A Kubernetes toleration, copied into the Ray pods."""

    key: str | None = Field(default=None, description="The taint key.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal."
    )
    value: str | None = Field(default=None, description="The taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="The taint effect."
    )
    toleration_seconds: int | None = Field(default=None, description="For NoExecute taints.")


class KubernetesPlacement(Model):
    """Settings for the Kubernetes (KubeRay) backend."""

    queue: str | None = Field(
        default=None,
        description="Kueue LocalQueue name; Kueue then admits the RayJob through `suspend`.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector for the Ray pods."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Tolerations for the Ray pods."
    )
    service_account: str | None = Field(
        default=None,
        description=(
            "ServiceAccount of the Ray pods; its token is mounted only when one is named "
            "(rlops's own pods need no Kubernetes rights)."
        ),
    )
    expose_dashboard: bool | None = Field(
        default=None,
        description=(
            "Retired: the Ray dashboard always listens on the head pod's address, where "
            "KubeRay's operator and its submitter pod reach it, and answers only requests "
            "carrying the cluster's token (KubeRay's `authOptions: {mode: token}`). Leave "
            "it out."
        ),
    )
    ttl_seconds_after_finished: int = Field(
        default=300, description="Seconds the finished RayJob and its cluster are kept."
    )
    pre_running_deadline_seconds: int = Field(
        default=600,
        description=(
            "Seconds the RayJob may stay Initializing (image pulls, quota) before the "
            "experiment fails with a clear message."
        ),
    )
    max_parallel: int | None = Field(
        default=None,
        description="Sweeps with `burst` placement: trials running or waiting here at most.",
    )
    shared_cluster: bool | None = Field(
        default=None,
        description=(
            "true, on Sweeps only (`spec.placement.kubernetes`): one RayCluster for the whole "
            "sweep, sized for `parallelism` trials and admitted by Kueue as a whole; each trial "
            "runs as a RayJob on it (`clusterSelector`), so no trial waits for a cluster of "
            "its own. The cluster is deleted when the sweep ends."
        ),
    )

    @field_validator("expose_dashboard")
    @classmethod
    def _retired(cls, value: bool | None) -> bool | None:
        if value is not None:
            raise ValueError(
                "is retired: the Ray dashboard now always listens on the head pod's address "
                "and answers only with the cluster's token (KubeRay's authOptions token "
                "mode), so KubeRay's operator and its submitter pod reach it; remove "
                "exposeDashboard"
            )
        return value


class ContainerRuntime(enum.StrEnum):
    APPTAINER = "apptainer"
    SINGULARITY = "singularity"
    PODMAN = "podman"
    NONE = "none"


class SlurmPlacement(Model):
    """Settings for the SLURM backend (the bridge, or `rlops run --backend slurm`)."""

    cluster: str = Field(
        default="default",
        description="The SLURM cluster's name; the bridge started with `--cluster` claims it.",
    )
    partition: str | None = Field(default=None, description="--partition.")
    account: str | None = Field(default=None, description="--account.")
    qos: str | None = Field(default=None, description="--qos.")
    time_limit: str | None = Field(
        default=None,
        description="--time, in a SLURM format: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM:SS`.",
    )
    gpus_per_node: int | None = Field(default=None, description="--gpus-per-node.")
    constraint: str | None = Field(default=None, description="--constraint (node features).")
    extra_directives: list[str] = Field(
        default_factory=list,
        description="More `#SBATCH` options, each `--name` or `--name=value`; validated.",
    )
    container_runtime: ContainerRuntime = Field(
        default=ContainerRuntime.NONE,
        description=(
            "`apptainer`, `singularity` or `podman` run the image (a local `.sif` path runs "
            "that file with apptainer/singularity); `none` runs the host Python."
        ),
    )
    container_options: list[str] = Field(
        default_factory=list,
        description=(
            "Options for `apptainer exec` or `podman run`, e.g. `--nv` for GPUs or "
            "`--bind=/data` (apptainer), `--volume=/data:/data` (podman)."
        ),
    )
    max_requeues: int = Field(
        default=0,
        description="How often a job that hits its time limit is requeued to resume.",
    )
    signal_seconds: int = Field(
        default=120,
        description="Seconds before the time limit at which SIGUSR1 asks for a checkpoint.",
    )
    python: str | None = Field(
        default=None,
        description="Runtime `none`: the Python interpreter with rlops installed.",
    )
    trials_per_job: int = Field(
        default=1,
        ge=1,
        description=(
            "`rlops run --backend slurm` and the SLURM bridge: trials of a sweep packed into "
            "one job on one node, sharing its CPUs and GPUs (a fractional gpusPerLearner "
            "shares a device); 1: a job (or array task) per trial. Retries and resumes run "
            "alone."
        ),
    )


class PlacementSpec(Model):
    """Where the experiment runs."""

    backend: Backend = Field(default=Backend.LOCAL, description="kubernetes, slurm or local.")
    kubernetes: KubernetesPlacement | None = Field(default=None, description="Kubernetes settings.")
    slurm: SlurmPlacement | None = Field(default=None, description="SLURM settings.")
