"""The run directory: the contract between the runtime and everything that watches it.

The runtime (`python -m rlops.runtime` / `rlops train`) writes, under one run directory:

    spec.yaml            the RLExperiment it trains (as given)
    progress.jsonl       one ProgressRecord per training iteration, appended
    result.json          a RunResult, written when the attempt ends (any way)
    checkpoints/         checkpoint_<iteration:06d>/ directories (RLlib's format)
    tensorboard/         TensorBoard scalars
    attempts/<n>.log     stdout+stderr of attempt n (written by the launcher)

Drivers (local runner, SLURM bridge, operator) read progress.jsonl and result.json
and never parse logs. Exit codes tell a launcher what to do next.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

from rlops.api.base import Model

PROGRESS_FILE = "progress.jsonl"
RESULT_FILE = "result.json"
SPEC_FILE = "spec.yaml"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"


PAUSED_REASON = "paused"  # RunResult.stop_reason of a run that ended at its pause point


class ExitCode(enum.IntEnum):
    """What the runtime's exit status means."""

    SUCCEEDED = 0  # a stop criterion was met
    FAILED = 1  # training raised; see result.json's message
    INVALID = 2  # the spec was rejected before training
    REQUEUE = 75  # EX_TEMPFAIL: signalled (SIGTERM/SIGUSR1), checkpointed; run me again


class ProgressRecord(Model):
    """One training iteration."""

    iteration: int = Field(description="Training iteration, counted over all attempts.")
    timesteps: int = Field(description="Env steps sampled, counted over all attempts.")
    episode_return_mean: float | None = Field(default=None, description="Mean episode return.")
    time_seconds: float = Field(description="Training wall time, summed over attempts.")
    timestamp: float = Field(description="Unix time the iteration ended.")
    attempt: int = Field(default=1, description="Attempt that produced it.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Other scalar results, `/`-separated keys."
    )


class RuntimeInfo(Model):
    """Where an attempt ran: enough to tell a container's interpreter from a host's."""

    hostname: str = Field(description="Host (or pod, or container) that trained.")
    python: str = Field(description="The interpreter that trained (sys.executable).")
    rlops_version: str = Field(description="The rlops version that trained.")
    ray_nodes: int | None = Field(
        default=None, description="Live Ray nodes in the cluster it trained on (None: no Ray)."
    )
    ray_head: str | None = Field(
        default=None, description="Address of the Ray head (its GCS) the attempt connected to."
    )
    env_runner_nodes: list[str] | None = Field(
        default=None, description="Node address of each remote env runner, as Ray placed them."
    )

    @model_serializer(mode="wrap")
    def _camel_case(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # result.json keeps RunResult's own keys; this block reads as the docs name it.
        data: dict[str, Any] = handler(self)
        return {to_camel(key): value for key, value in data.items()}


class RunResult(Model):
    """How an attempt ended."""

    status: str = Field(description="succeeded, failed, requeue or invalid.")
    exit_code: int = Field(description="The runtime's exit code (ExitCode).")
    message: str = Field(default="", description="Why it ended.")
    stop_reason: str | None = Field(default=None, description="The stop criterion that was met.")
    iteration: int = Field(default=0, description="Last iteration.")
    timesteps: int = Field(default=0, description="Env steps in all.")
    episode_return_mean: float | None = Field(default=None, description="Final mean return.")
    best_episode_return_mean: float | None = Field(default=None, description="Best mean return.")
    best_checkpoint: str | None = Field(default=None, description="Best checkpoint path.")
    last_checkpoint: str | None = Field(default=None, description="Latest checkpoint path.")
    attempt: int = Field(default=1, description="Attempt number.")
    time_seconds: float = Field(default=0.0, description="Training wall time in all.")
    runtime: RuntimeInfo | None = Field(default=None, description="Where the attempt ran.")


def read_progress(run_dir: Path, after_line: int = 0) -> list[ProgressRecord]:
    """Progress records from line `after_line` on; a torn last line is skipped."""
    path = run_dir / PROGRESS_FILE
    if not path.exists():
        return []
    records = []
    with path.open() as f:
        for i, line in enumerate(f):
            if i < after_line or not line.endswith("\n"):
                continue
            try:
                records.append(ProgressRecord.model_validate(json.loads(line)))
            except ValueError:
                continue
    return records


def read_result(run_dir: Path) -> RunResult | None:
    path = run_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        return RunResult.model_validate(json.loads(path.read_text()))
    except ValueError:
        return None


def progress_line(record: ProgressRecord) -> str:
    data: dict[str, Any] = record.model_dump(mode="json", by_alias=False, exclude_none=True)
    return json.dumps(data, separators=(",", ":")) + "\n"
