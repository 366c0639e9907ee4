"""Helpers of the runtime tests: fast training specs, a shared Ray, runtime processes."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.experiment import RLExperiment
from rlops.api.runinfo import RunResult
from tests.builders import ExperimentBuilder, experiment

# PPO settings that solve CartPole within a few thousand steps on one core.
FAST_PPO = {
    "train_batch_size_per_learner": 1000,
    "minibatch_size": 128,
    "num_epochs": 6,
    "lr": 0.001,
}
# The cheapest PPO iteration that still trains: for runs about counting, not learning.
SMALL_BATCH = 500


def cartpole(name: str = "cartpole", batch: int = SMALL_BATCH) -> ExperimentBuilder:
    """A PPO CartPole experiment: driver-only sampling, small network, seed 1."""
    return (
        experiment(name)
        .config("training", **{**FAST_PPO, "train_batch_size_per_learner": batch, "num_epochs": 2})
        .config("rl_module", model_config={"fcnet_hiddens": [64, 64]})
        .set("spec.seed", 1)
    )


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One local Ray for the in-process training tests of a module."""
    import ray

    ray.init(num_cpus=1, include_dashboard=False)
    yield
    ray.shutdown()


def train_here(manifest: dict[str, Any], run_dir: Path, attempt: int = 1) -> RunResult:
    """Train in this process (Ray already running) as the runtime would."""
    from rlops.runtime.attempt import train

    spec = RLExperiment.model_validate(manifest).spec
    return train(spec, run_dir, attempt)


def runtime_env(**extra: str) -> dict[str, str]:
    """This environment without Ray or rlops settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RLOPS_", "RAY_ADDRESS"))}
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def start_runtime(
    manifest: dict[str, Any],
    run_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[str]:
    """`python -m rlops.runtime --spec <manifest> --run-dir <run_dir> ARGS` in the background."""
    spec = run_dir.parent / f"{run_dir.name}-manifest.yaml"
    spec.write_text(yaml.safe_dump(manifest))
    return subprocess.Popen(
        [sys.executable, "-m", "rlops.runtime", "--spec", str(spec), "--run-dir", str(run_dir),
         *args],
        env=env or runtime_env(),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str]:
    """Exit code and output of a runtime process."""
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files under `log_dir`: tag -> [(step, value)]."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset + 12 <= len(data):  # TFRecord: length, crc, payload, crc
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            payload = data[offset + 12 : offset + 12 + length]
            offset += 12 + length + 4
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
