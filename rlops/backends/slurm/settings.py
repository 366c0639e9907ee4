"""SLURM backend settings: one pydantic-settings class read from `RLOPS_SLURM_*` variables."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SlurmSettings(BaseSettings):
    """What the batch scripts and the SLURM clients need to know about this installation."""

    model_config = SettingsConfigDict(env_prefix="RLOPS_SLURM_", extra="ignore")

    run_root: Path = Field(
        default=Path.home() / "rlops-runs",
        description=(
            "Shared filesystem path; an experiment's run directory is "
            "`<runRoot>/<namespace>/<name>` unless its storage.path says otherwise."
        ),
    )
    python: str = Field(
        default=sys.executable,
        description="Runtime `none`: the interpreter with rlops, unless the spec names one.",
    )
    image_python: str = Field(
        default="python", description="Apptainer/Singularity: the interpreter inside the image."
    )
    default_image: str = Field(
        default="ghcr.io/rlops/rlops:0.1.0", description="Image when an experiment names none."
    )
    bin_dir: Path | None = Field(
        default=None, description="Directory of sbatch/squeue/scontrol/scancel (default: PATH)."
    )
    command_timeout_seconds: float = Field(
        default=30.0, description="Each SLURM command is killed after this long."
    )
    retries: int = Field(
        default=4, description="Retries of a command that failed because slurmctld was down."
    )
    backoff_seconds: float = Field(
        default=1.0, description="First pause between retries; doubles each time (max 30 s)."
    )
    stop_grace_seconds: int = Field(
        default=300,
        ge=1,
        description=(
            "A stop or pause signals the runtime (it ends its iteration and checkpoints); "
            "a runtime still running this many seconds later is killed."
        ),
    )
    ray_port_base: int = Field(
        default=20000,
        description="Multi-node Ray ports: `base + (jobId % 400) * 100 + k` (no clash per node).",
    )
    arrays: bool = Field(
        default=True,
        description=(
            "`rlops run --backend slurm`: submit trials started together with equal batch "
            "directives as one job array (false: one sbatch per trial)."
        ),
    )
    rest_socket: Path | None = Field(
        default=None, description="slurmrestd unix socket; set to use the REST client."
    )
    rest_token: str | None = Field(
        default=None, description="slurmrestd JWT (`scontrol token`), sent with the user name."
    )
