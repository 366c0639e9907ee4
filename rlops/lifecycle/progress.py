"""The one budget-percent rule, the one metric lookup and the status's Progress."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from rlops.api.annotations import ANNOTATION_OBJECTIVE
from rlops.api.experiment import ExperimentResult, Progress, StopSpec
from rlops.api.runinfo import ProgressRecord, RunResult

DEFAULT_METRIC = "episode_return_mean"


def percent_of_budget(stop: StopSpec, record: ProgressRecord | None) -> float | None:
    """How far training is, in percent, by the stop criterion furthest along.

    Timesteps, iterations and wall time count as used over budget; a positive
    episode-return target counts as the return reached over the target (a return at or
    below zero says nothing of how close it is). None without a criterion or a record.
    """
    if record is None:
        return None
    fractions = [
        done / budget
        for done, budget in (
            (record.timesteps, stop.timesteps),
            (record.iteration, stop.iterations),
            (record.time_seconds, stop.wall_time_seconds),
        )
        if budget
    ]
    target, reached = stop.episode_return_mean, record.episode_return_mean
    if target is not None and target > 0 and reached is not None and reached > 0:
        fractions.append(reached / target)
    if not fractions:
        return None
    return round(min(100.0, 100.0 * max(fractions)), 1)


def metric_value(record: ProgressRecord, metric: str) -> float | None:
    """The objective `metric` in one progress record: episode_return_mean, else the
    metric by its name or with `.` read as `/` (`custom.score` is `custom/score`); a value
    that is not finite counts as none."""
    if metric == DEFAULT_METRIC:
        value = record.episode_return_mean
    else:
        value = next(
            (record.metrics[k] for k in (metric, metric.replace(".", "/")) if k in record.metrics),
            None,
        )
    return value if value is None or math.isfinite(value) else None


def rfc3339(moment: float | datetime) -> str:
    """A Unix time or an aware datetime as RFC 3339 UTC to the second."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def progress_of(record: ProgressRecord, stop: StopSpec, updated_at: str | None = None) -> Progress:
    """The status's Progress from a record (updated when it was written, unless told)."""
    return Progress(
        iteration=record.iteration,
        timesteps=record.timesteps,
        episode_return_mean=record.episode_return_mean,
        time_seconds=round(record.time_seconds, 3),
        updated_at=updated_at or rfc3339(record.timestamp),
        percent=percent_of_budget(stop, record),
    )


def objective_metric(annotations: Mapping[str, str]) -> str:
    """The metric a sweep ranks this trial by (`rlops.dev/objective`), else episode return."""
    return annotations.get(ANNOTATION_OBJECTIVE, DEFAULT_METRIC)


def experiment_result(
    result: RunResult, metric: str, last: ProgressRecord | None, run_dir: Path | None = None
) -> ExperimentResult:
    """The outcome result.json reports, by the objective `metric` (another metric than
    episode return: its value in the last progress record); a relative best checkpoint is
    taken in `run_dir` when given."""
    if metric == DEFAULT_METRIC:
        final, best = result.episode_return_mean, result.best_episode_return_mean
    else:
        final = metric_value(last, metric) if last is not None else None
        best = None
    checkpoint = result.best_checkpoint
    if checkpoint and run_dir is not None and not checkpoint.startswith("/"):
        checkpoint = str(run_dir / checkpoint)
    return ExperimentResult(
        final_objective=final,
        best_objective=best,
        best_checkpoint=checkpoint,
        stop_reason=result.stop_reason,
    )
