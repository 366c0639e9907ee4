"""Real RLlib training in this process (one shared local Ray): learning, stop criteria,
checkpoint frequency and keep-N-best, a second algorithm, failures.

Runs go through `rlops.runtime.attempt.train`, the part of the runtime that runs
once Ray is up; process behaviour (exit codes, signals, resume) is in test_process.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlops.api.runinfo import read_progress
from rlops.runtime.checkpoints import METADATA_FILE
from tests.builders import experiment
from tests.runtime.conftest import FAST_PPO, cartpole, tensorboard_scalars, train_here

pytestmark = [pytest.mark.training, pytest.mark.usefixtures("ray_session")]


def test_ppo_learns_cartpole_to_return_150(tmp_path: Path) -> None:
    manifest = (
        cartpole("ppo-150")
        .config("training", **FAST_PPO)
        .stop(episodeReturnMean=150, timesteps=30000)
        .obj()
    )
    result = train_here(manifest, tmp_path)

    assert result.status == "succeeded", result.message
    assert result.stop_reason == "episode_return_mean"
    assert result.episode_return_mean is not None and result.episode_return_mean >= 150
    records = read_progress(tmp_path)
    assert [r.iteration for r in records] == list(range(1, result.iteration + 1))
    assert [r.timesteps for r in records] == [1000 * r.iteration for r in records]
    assert records[-1].episode_return_mean == result.episode_return_mean
    assert all(r.episode_return_mean < 150 for r in records[:-1] if r.episode_return_mean)
    assert "learners/default_policy/total_loss" in records[-1].metrics
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    returns = scalars["rlops/episode_return_mean"]
    assert [step for step, _ in returns] == [r.timesteps for r in records]
    assert returns[-1][1] == pytest.approx(result.episode_return_mean)
    assert "learners/default_policy/policy_loss" in scalars
    # atEnd (the default) checkpoints the final state.
    assert result.last_checkpoint == f"checkpoints/checkpoint_{result.iteration:06d}"


def test_dqn_trains_a_few_iterations(tmp_path: Path) -> None:
    manifest = (
        experiment("dqn")
        .algorithm("DQN")
        .set("spec.config", {})
        .config("training", num_steps_sampled_before_learning_starts=100,
                train_batch_size_per_learner=32)
        .config("env_runners", rollout_fragment_length=50)
        .config("reporting", min_sample_timesteps_per_iteration=300)
        .stop(iterations=3)
        .obj()
    )  # fmt: skip
    result = train_here(manifest, tmp_path)

    assert result.status == "succeeded", result.message
    assert result.stop_reason == "iterations"
    records = read_progress(tmp_path)
    assert [r.iteration for r in records] == [1, 2, 3]
    steps = [r.timesteps for r in records]
    assert steps[0] >= 300 and steps == sorted(set(steps))
    assert any(k.endswith("qf_loss") for k in records[-1].metrics), records[-1].metrics


@pytest.mark.parametrize(
    ("criterion", "field", "limit", "other"),
    [
        ("timesteps", "timesteps", 1000, {"iterations": 50}),
        ("iterations", "iterations", 2, {"timesteps": 100000}),
        ("wall_time_seconds", "wallTimeSeconds", 3.0, {"iterations": 50}),
        ("episode_return_mean", "episodeReturnMean", 26, {"iterations": 50}),
    ],
)
def test_each_stop_criterion_ends_the_run(
    tmp_path: Path, criterion: str, field: str, limit: float, other: dict[str, int]
) -> None:
    manifest = cartpole(f"stop-{field.lower()}").stop(**{field: limit}, **other).obj()
    result = train_here(manifest, tmp_path)

    assert result.status == "succeeded", result.message
    assert result.stop_reason == criterion
    records = read_progress(tmp_path)
    value = {
        "timesteps": lambda r: r.timesteps,
        "iterations": lambda r: r.iteration,
        "wall_time_seconds": lambda r: r.time_seconds,
        "episode_return_mean": lambda r: r.episode_return_mean or float("-inf"),
    }[criterion]
    # The first iteration that meets the criterion ends the run, not a later one.
    assert value(records[-1]) >= limit
    assert all(value(r) < limit for r in records[:-1])


def test_checkpoint_frequency_is_honoured(tmp_path: Path) -> None:
    manifest = (
        cartpole("frequency")
        .stop(iterations=5)
        .set("spec.checkpoint", {"frequency": 2, "atEnd": False})
        .obj()
    )
    train_here(manifest, tmp_path)
    written = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert written == ["checkpoint_000002", "checkpoint_000004"]

    manifest["spec"]["checkpoint"]["atEnd"] = True
    manifest["spec"]["stop"]["iterations"] = 7  # the resumed run goes on to 7
    result = train_here(manifest, tmp_path, attempt=2)
    written = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert written == [f"checkpoint_{i:06d}" for i in (2, 4, 6, 7)]
    assert result.iteration == 7


def test_keeps_the_n_best_checkpoints_by_score_and_the_latest(tmp_path: Path) -> None:
    attribute = "env_runners/episode_len_mean"
    manifest = (
        cartpole("keep-best")
        .stop(iterations=6)
        .set("spec.checkpoint", {"frequency": 1, "keep": 2, "scoreAttribute": attribute,
                                 "scoreOrder": "min"})
        .obj()
    )  # fmt: skip
    result = train_here(manifest, tmp_path)

    scores = {r.iteration: r.metrics[attribute] for r in read_progress(tmp_path)}
    two_lowest = sorted(scores, key=lambda i: (scores[i], -i))[:2]
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == sorted(f"checkpoint_{i:06d}" for i in {*two_lowest, 6})
    for name in kept:
        meta = json.loads((tmp_path / "checkpoints" / name / METADATA_FILE).read_text())
        assert meta["score"] == pytest.approx(scores[meta["iteration"]])
    assert result.best_checkpoint == f"checkpoints/checkpoint_{two_lowest[0]:06d}"
    assert result.last_checkpoint == "checkpoints/checkpoint_000006"


def test_an_exception_ends_the_attempt_as_failed(tmp_path: Path) -> None:
    manifest = (
        experiment("broken")
        .set("spec.environment", {"entryPoint": "rlops_no_such_package.envs:make"})
        .obj()
    )
    result = train_here(manifest, tmp_path)

    assert result.status == "failed"
    assert result.exit_code == 1
    # The import string's error names the module that is missing and where it was looked for.
    assert "ImportRefError" in result.message
    assert "module 'rlops_no_such_package' is not on the import path" in result.message
