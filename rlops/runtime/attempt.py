"""One attempt at a run: build the algorithm, resume, train, and say how it ended.

Ray must be running (or connected) already; `rlops.runtime.main` sees to that.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlops.api.experiment import RLExperimentSpec
from rlops.api.runinfo import CHECKPOINT_DIR, ExitCode, RunResult
from rlops.runtime.algo_config import build_config, register_environment
from rlops.runtime.checkpoints import CheckpointInfo, CheckpointStore
from rlops.runtime.loop import Outcome, Trainer
from rlops.runtime.placement import env_runner_nodes, runtime_info
from rlops.runtime.progress import ProgressLog
from rlops.runtime.reporter import ProgressReporter
from rlops.runtime.signals import RequeueNow, SignalWatch
from rlops.runtime.stopping import Totals

log = logging.getLogger(__name__)

EXIT_CODES = {
    "succeeded": ExitCode.SUCCEEDED,
    "failed": ExitCode.FAILED,
    "requeue": ExitCode.REQUEUE,
    "invalid": ExitCode.INVALID,
}


def totals_at(checkpoint: CheckpointInfo) -> Totals:
    return Totals(
        iteration=checkpoint.iteration,
        timesteps=checkpoint.timesteps,
        time_seconds=checkpoint.time_seconds,
        episode_return_mean=checkpoint.episode_return_mean,
        best_episode_return_mean=checkpoint.best_episode_return_mean,
    )


def restore(algo: Any, store: CheckpointStore, resume_from: str | None) -> Totals:
    """Resume from the run's latest checkpoint, else start from `resume_from`, else fresh."""
    latest = store.latest()
    if latest is not None:
        log.info("resuming from %s (iteration %d)", latest.path, latest.iteration)
        algo.restore_from_path(str(latest.path))
        return totals_at(latest)
    if resume_from is not None:
        path = Path(resume_from).resolve()
        log.info("starting from checkpoint %s", path)
        algo.restore_from_path(str(path))
    return Totals()


def train(
    spec: RLExperimentSpec,
    run_dir: Path,
    attempt: int,
    signals: SignalWatch | None = None,
    reporter: ProgressReporter | None = None,
    echo: Callable[[str], None] | None = None,
    pause_at: int | None = None,
) -> RunResult:
    """Train `spec` in `run_dir` until it stops, is signalled, pauses or fails."""
    store = CheckpointStore(run_dir / CHECKPOINT_DIR, spec.checkpoint)
    store.remove_partials()
    trainer: Trainer | None = None
    algo: Any = None
    placed: list[str] | None = None
    progress: ProgressLog | None = None
    try:
        assert spec.environment is not None  # validated: an RLlib run
        env_name = register_environment(spec.environment)
        algo = build_config(spec, env_name).build_algo()
        placed = env_runner_nodes(algo)
        if placed and echo is not None:
            echo(f"rlops: env runners on nodes {', '.join(placed)}")
        totals = restore(algo, store, spec.checkpoint.resume_from)
        progress = ProgressLog(run_dir)
        trainer = Trainer(
            algo, spec, progress, store, totals, attempt, signals, reporter, echo, pause_at
        )
        outcome = trainer.run()
    except RequeueNow as exc:
        outcome = Outcome("requeue", None, f"{exc}; aborted the iteration, not checkpointed")
    except Exception as exc:
        traceback.print_exc()
        outcome = Outcome("failed", None, f"{type(exc).__name__}: {exc}")
    finally:
        if progress is not None:
            progress.close()
        if algo is not None:
            algo.stop()
    totals = trainer.totals if trainer is not None else Totals()
    result = run_result(outcome, totals, store, run_dir, attempt)
    if placed:
        result = result.model_copy(update={"runtime": runtime_info(None, None, placed)})
    return result


def run_result(
    outcome: Outcome, totals: Totals, store: CheckpointStore, run_dir: Path, attempt: int
) -> RunResult:
    """The RunResult of an ended attempt; checkpoint paths are relative to the run directory."""
    best, latest = store.best(), store.latest()
    return RunResult(
        status=outcome.status,
        exit_code=EXIT_CODES[outcome.status],
        message=outcome.message,
        stop_reason=outcome.stop_reason,
        iteration=totals.iteration,
        timesteps=totals.timesteps,
        episode_return_mean=totals.episode_return_mean,
        best_episode_return_mean=totals.best_episode_return_mean,
        best_checkpoint=str(best.path.relative_to(run_dir)) if best else None,
        last_checkpoint=str(latest.path.relative_to(run_dir)) if latest else None,
        attempt=attempt,
        time_seconds=round(totals.time_seconds, 3),
    )
