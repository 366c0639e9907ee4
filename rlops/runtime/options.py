"""What the runtime is asked to do: command-line options and `RLOPS_*` settings.

`python -m rlops.runtime` and `rlops train` share these options. Nothing here imports
Ray, so `rlops train --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Settings the launcher passes through the environment."""

    model_config = SettingsConfigDict(env_prefix="RLOPS_", extra="ignore")

    run_dir: str | None = Field(
        default=None,
        description="Run directory (a path, s3:// or gs:// URI) if `--run-dir` is not given.",
    )
    storage_sync_seconds: float = Field(
        default=5.0,
        description=(
            "A run directory in an object store is pushed there this often while the attempt "
            "runs (and at its end); the attempt trains in a local scratch directory."
        ),
    )
    scratch_dir: Path | None = Field(
        default=None,
        description="Where the scratch directory of an object-store run goes (default: $TMPDIR).",
    )
    ray_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RAY_ADDRESS", "RLOPS_RAY_ADDRESS"),
        description="Ray cluster to connect to when `--ray-address` is not given.",
    )
    progress_url: str | None = Field(
        default=None, description="Where each progress record is POSTed (with the token)."
    )
    progress_token: str | None = Field(
        default=None, description="Bearer token of the progress endpoint."
    )
    progress_interval_seconds: float = Field(
        default=2.0, description="Progress is POSTed at most this often (the latest record)."
    )
    pause_at_iteration: int | None = Field(
        default=None,
        description=(
            "Checkpoint and end, exit 75 with stop reason `paused`, once this many iterations "
            "are done (a sweep under ASHA's promotion variant sets it to the trial's rung)."
        ),
    )
    command_grace_seconds: float = Field(
        default=60.0,
        description=(
            "A command trainer asked to end (SIGTERM) is killed this many seconds later if it "
            "has not exited; it resumes from its latest checkpoint."
        ),
    )
    driver_log: bool = Field(
        default=False,
        description=(
            "Also write standard output and error to `<run dir>/attempts/<n>.log` (the KubeRay "
            "backend sets it, so the log outlives the driver pod)."
        ),
    )
    pythonpath: str = Field(
        default="",
        description=(
            "Extra import paths (os.pathsep-separated) for custom environments; they are "
            "put on sys.path and on the Ray workers' PYTHONPATH."
        ),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The runtime's options, as both entry points take them."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", type=Path, help="RLExperiment manifest (YAML or JSON).")
    source.add_argument("--spec-b64", help="The manifest, base64-encoded (for RayJob entrypoints).")
    parser.add_argument(
        "--run-dir",
        help="Run directory: a path, or an s3:// or gs:// URI (default: $RLOPS_RUN_DIR).",
    )
    parser.add_argument(
        "--ray-address",
        help="Ray cluster to connect to (default: $RAY_ADDRESS; none starts a local Ray).",
    )
    parser.add_argument(
        "--attempt",
        type=int,
        help="Attempt number (default: one more than the run directory's last attempt).",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rlops.runtime",
        description="Train one RLExperiment (RLlib, or a command trainer) into a run directory.",
    )
    add_arguments(parser)
    return parser
