"""The training loop: `algo.train()` plus the run's bookkeeping, one iteration at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rlops.api.experiment import RLExperimentSpec
from rlops.api.runinfo import MAX_REPORTED_METRICS, PAUSED_REASON, ProgressRecord
from rlops.runtime.checkpoints import CheckpointInfo, CheckpointStore, finite, score_of
from rlops.runtime.progress import ProgressLog, custom_metrics, flatten, progress_metrics
from rlops.runtime.reporter import ProgressReporter
from rlops.runtime.signals import SignalWatch
from rlops.runtime.stopping import Totals, stop_reason


@dataclass(frozen=True)
class Outcome:
    """How the loop ended: `succeeded` (a stop criterion) or `requeue` (a signal, or the
    pause point: stop reason `paused`)."""

    status: str
    stop_reason: str | None = None
    message: str = ""


def env_steps(result: dict[str, Any]) -> int:
    """Env steps sampled by this iteration (summed over env runners by RLlib)."""
    value = finite(result.get("env_runners", {}).get("num_env_steps_sampled"))
    return int(value) if value is not None else 0


def episode_return(result: dict[str, Any]) -> float | None:
    return finite(result.get("env_runners", {}).get("episode_return_mean"))


def better(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def publish(
    record: ProgressRecord,
    flat: dict[str, float],
    log: ProgressLog,
    reporter: ProgressReporter | None,
    echo: Callable[[str], None] | None,
) -> None:
    """An iteration's record into progress.jsonl and TensorBoard, to the endpoint and the log."""
    log.write(record, flat)
    if reporter is not None:
        posted = record.model_dump(mode="json", exclude_none=True)
        posted["metrics"] = dict(list(record.metrics.items())[:MAX_REPORTED_METRICS])
        reporter.report(posted)
    if echo is not None:
        ret = record.episode_return_mean
        shown = "n/a" if ret is None else f"{ret:.2f}"
        echo(
            f"iteration {record.iteration}  timesteps {record.timesteps}  "
            f"return {shown}  time {record.time_seconds:.1f}s"
        )


class Trainer:
    """Runs iterations until a stop criterion or a signal, keeping `totals` current."""

    def __init__(
        self,
        algo: Any,
        spec: RLExperimentSpec,
        log: ProgressLog,
        store: CheckpointStore,
        totals: Totals,
        attempt: int,
        signals: SignalWatch | None = None,
        reporter: ProgressReporter | None = None,
        echo: Callable[[str], None] | None = None,
        pause_at: int | None = None,
    ) -> None:
        self.algo = algo
        self.spec = spec
        self.log = log
        self.store = store
        self.totals = totals
        self.attempt = attempt
        self.signals = signals
        self.reporter = reporter
        self.echo = echo
        self.pause_at = pause_at
        self.last_result: dict[str, Any] | None = None

    def step(self) -> dict[str, Any]:
        """One training iteration, logged, reported and checkpointed as configured."""
        start = time.monotonic()
        result: dict[str, Any] = self.algo.train()
        ret = episode_return(result)
        t = self.totals
        self.totals = Totals(
            iteration=t.iteration + 1,
            timesteps=t.timesteps + env_steps(result),
            time_seconds=t.time_seconds + (time.monotonic() - start),
            episode_return_mean=ret,
            best_episode_return_mean=better(t.best_episode_return_mean, ret),
        )
        self.last_result = result
        flat = flatten(result)
        record = ProgressRecord(
            iteration=self.totals.iteration,
            timesteps=self.totals.timesteps,
            episode_return_mean=ret,
            time_seconds=round(self.totals.time_seconds, 3),
            timestamp=time.time(),
            attempt=self.attempt,
            metrics={
                **progress_metrics(flat, self.spec.checkpoint.score_attribute),
                **custom_metrics(flat),
            },
        )
        publish(record, flat, self.log, self.reporter, self.echo)
        frequency = self.spec.checkpoint.frequency
        if frequency and self.totals.iteration % frequency == 0:
            self.checkpoint()
        return result

    def checkpoint(self) -> CheckpointInfo | None:
        """Save the current state, unless no iteration has run (nothing new to save)."""
        if self.totals.iteration == 0:
            return None
        score = None
        if self.last_result is not None:
            score = score_of(self.last_result, self.spec.checkpoint.score_attribute)
        info = CheckpointInfo(
            path=self.store.root,
            iteration=self.totals.iteration,
            timesteps=self.totals.timesteps,
            time_seconds=self.totals.time_seconds,
            attempt=self.attempt,
            score=score,
            episode_return_mean=self.totals.episode_return_mean,
            best_episode_return_mean=self.totals.best_episode_return_mean,
        )
        if self.last_result is None:
            # Resumed and stopped before any iteration: the latest checkpoint is this state.
            latest = self.store.latest()
            return replace(info, path=latest.path) if latest is not None else None
        return self.store.save(self.algo, info)

    def run(self) -> Outcome:
        while True:
            reason = stop_reason(self.spec.stop, self.totals)
            if reason is not None:
                if self.spec.checkpoint.at_end:
                    self.checkpoint()
                return Outcome("succeeded", reason, f"stop criterion {reason} met")
            if self.signals is not None and self.signals.received is not None:
                self.checkpoint()
                name = self.signals.received.name
                return Outcome("requeue", None, f"{name} received; checkpointed for requeue")
            if self.pause_at is not None and self.totals.iteration >= self.pause_at:
                self.checkpoint()
                message = f"paused at iteration {self.totals.iteration}; checkpointed"
                return Outcome("requeue", PAUSED_REASON, message)
            self.step()
