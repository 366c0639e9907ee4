"""The one budget-percent rule, metric lookup and result builder of every backend."""

from __future__ import annotations

from pathlib import Path

from rlops.api import StopSpec
from rlops.api.runinfo import ProgressRecord, RunResult
from rlops.lifecycle import experiment_result, metric_value, objective_metric, percent_of_budget


def record(iteration: int = 3, ret: float | None = 50.0, **metrics: float) -> ProgressRecord:
    return ProgressRecord(iteration=iteration, timesteps=iteration * 100,
                          time_seconds=iteration * 2.0, timestamp=0.0,
                          episode_return_mean=ret, metrics=metrics)  # fmt: skip


def test_percent_is_the_criterion_furthest_along() -> None:
    assert percent_of_budget(StopSpec(timesteps=1000, iterations=10), record(3)) == 30.0
    assert percent_of_budget(StopSpec(iterations=10, episode_return_mean=100), record(3)) == 50.0
    assert percent_of_budget(StopSpec(episode_return_mean=100), record(3, ret=-5.0)) is None
    assert percent_of_budget(StopSpec(iterations=2), record(3)) == 100.0
    assert percent_of_budget(StopSpec(iterations=2), None) is None


def test_metric_lookup_reads_names_with_dots_as_slashes() -> None:
    last = record(**{"custom/score": 7.0})
    assert metric_value(last, "episode_return_mean") == 50.0
    assert metric_value(last, "custom.score") == metric_value(last, "custom/score") == 7.0
    assert metric_value(last, "absent") is None


def test_result_follows_the_objective_metric_on_every_backend(tmp_path: Path) -> None:
    result = RunResult(status="succeeded", exit_code=0, episode_return_mean=50.0,
                       best_episode_return_mean=60.0, best_checkpoint="checkpoints/c3")  # fmt: skip
    assert objective_metric({}) == "episode_return_mean"
    default = experiment_result(result, objective_metric({}), record(), tmp_path)
    assert (default.final_objective, default.best_objective) == (50.0, 60.0)
    assert default.best_checkpoint == str(tmp_path / "checkpoints/c3")
    metric = objective_metric({"rlops.dev/objective": "custom/score"})
    custom = experiment_result(result, metric, record(**{"custom/score": 7.0}))
    assert (custom.final_objective, custom.best_objective) == (7.0, None)
    assert custom.best_checkpoint == "checkpoints/c3"  # no run directory: as reported
