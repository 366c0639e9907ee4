"""Per-iteration output: a line of progress.jsonl and TensorBoard scalars."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from rlops.api.runinfo import PROGRESS_FILE, TENSORBOARD_DIR, ProgressRecord, progress_line
from rlops.runtime.checkpoints import finite

# Result entries that are bookkeeping, not measurements.
_NOT_SCALARS = {"config", "pid", "timestamp", "date", "hostname", "node_ip", "trial_id", "done"}
# What progress.jsonl keeps besides the fixed fields: a few that tell how training goes.
_PROGRESS_KEYS = (
    "env_runners/episode_len_mean",
    "env_runners/episode_return_max",
    "env_runners/episode_return_min",
    "env_runners/num_episodes",
    "evaluation/env_runners/episode_return_mean",
    # RLlib's fault tolerance: env runners alive, and restarted after they died.
    "fault_tolerance/num_healthy_workers",
    "fault_tolerance/num_remote_worker_restarts",
    "time_this_iter_s",
)
_LEARNER_SUFFIXES = ("loss", "entropy", "mean_kl_loss", "vf_explained_var")


def flatten(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every finite scalar of an RLlib result, keyed by its `/`-separated path."""
    flat: dict[str, float] = {}
    for key, value in result.items():
        if not prefix and key in _NOT_SCALARS:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}/"))
        elif not isinstance(value, bool | str) and (number := finite(value)) is not None:
            flat[path] = number
    return flat


def progress_metrics(flat: dict[str, float], score_attribute: str) -> dict[str, float]:
    """The few scalars a progress record carries: returns, lengths, losses, the score."""
    keys = [*_PROGRESS_KEYS, score_attribute]
    picked = {k: flat[k] for k in keys if k in flat}
    for key, value in flat.items():
        parts = key.split("/")
        if (
            len(parts) == 3
            and parts[0] == "learners"
            and parts[1] != "__all_modules__"
            and parts[2].endswith(_LEARNER_SUFFIXES)
        ):
            picked[key] = value
    return picked


@functools.cache
def rllib_metric_names() -> frozenset[str]:
    """The names RLlib itself gives results (its metrics constants)."""
    import ray.rllib.utils.metrics as metrics

    return frozenset(v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str))


def custom_metrics(flat: dict[str, float]) -> dict[str, float]:
    """What callbacks log with the env runners' metrics logger: `env_runners/<name>` keys
    that are none of RLlib's own names."""
    known = rllib_metric_names()
    return {
        key: value
        for key, value in flat.items()
        if key.count("/") == 1 and key.startswith("env_runners/") and key[12:] not in known
    }


def summary(scalars: dict[str, float]) -> Any:
    """One TensorBoard Summary holding every scalar of an iteration (one event, not 100)."""
    from tensorboardX.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in scalars.items()])


def _ends_torn(path: Path) -> bool:
    """Whether `path` is non-empty and its last line has no newline."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


class ProgressLog:
    """Appends progress.jsonl and writes TensorBoard scalars (step: timesteps)."""

    def __init__(self, run_dir: Path) -> None:
        from tensorboardX.writer import FileWriter

        self.path = run_dir / PROGRESS_FILE
        torn = _ends_torn(self.path)
        self.file = self.path.open("a")
        if torn:
            self.file.write("\n")  # end the line a killed attempt left half-written
        self.tensorboard = FileWriter(str(run_dir / TENSORBOARD_DIR), flush_secs=10)

    def write(self, record: ProgressRecord, flat: dict[str, float]) -> None:
        self.file.write(progress_line(record))
        self.file.flush()
        os.fsync(self.file.fileno())
        scalars = {"rlops/iteration": float(record.iteration)}
        if record.episode_return_mean is not None:
            scalars["rlops/episode_return_mean"] = record.episode_return_mean
        scalars.update(flat)
        self.tensorboard.add_summary(summary(scalars), record.timesteps)

    def close(self) -> None:
        self.file.close()
        self.tensorboard.close()
