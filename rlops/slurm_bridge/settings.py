"""SLURM bridge settings: one pydantic-settings class read from `RLOPS_BRIDGE_*` variables."""

from __future__ import annotations

import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BridgeSettings(BaseSettings):
    """Which RLExperiments this bridge runs and how often it looks."""

    model_config = SettingsConfigDict(env_prefix="RLOPS_BRIDGE_", extra="ignore")

    cluster: str = Field(description="The SLURM cluster's name (`placement.slurm.cluster`).")
    namespaces: list[str] = Field(
        default_factory=lambda: ["default"], description="Namespaces watched (RBAC: only these)."
    )
    poll_interval_seconds: float = Field(
        default=10.0, description="One list and one batched SLURM query per interval."
    )
    missing_polls: int = Field(
        default=3,
        ge=1,
        description=(
            "A job SLURM does not report (squeue, sacct) is declared gone only after this many "
            "polls in a row, unless its result.json tells how it ended."
        ),
    )
    bridge_id: str = Field(
        default_factory=socket.gethostname,
        description="This bridge's id in the `rlops.dev/claimed-by` annotation.",
    )
    metrics_port: int | None = Field(
        default=None, description="Serve /metrics, /healthz and /readyz on this port (none: off)."
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address the metrics port binds.")
