"""MLflow tracking of `rlops run` (a real MLflow server on loopback; the runner's fake
trainer, tests/runner/fake_trainer.py, stands in for RLlib): a sweep is a parent run and each
trial a child run with the tags sweep/trial/seed/configuration and its parameters as params;
metrics per iteration with the timesteps as the step; the final result and the checkpoint
paths; a failed attempt that is retried continues the same run; MLFLOW_TRACKING_URI is
the default URI; a server that is down does not stop training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rlops.api.runinfo import read_progress, read_result
from tests.builders import experiment, sweep
from tests.runner.helpers import run_manifest
from tests.tracking.mlflow_server import MlflowServer


def tracked_sweep(name: str, uri: str | None, **template: Any) -> dict[str, Any]:
    mlflow: dict[str, str] = {"experimentName": f"exp-{name}"}
    if uri:
        mlflow["trackingUri"] = uri
    builder = (
        sweep(name)
        .param("config.training.lr", "grid", values=[0.001, 0.1])
        .template("stop", {"iterations": 4})
        .set("spec.parallelism", 2)
        .set("spec.tracking", {"mlflow": mlflow})
    )
    for key, value in template.items():
        builder = builder.template(key, value)
    return builder.obj()


def runs_of(server: MlflowServer, experiment_name: str) -> list[Any]:
    client = server.client()
    found = client.get_experiment_by_name(experiment_name)
    assert found is not None, f"no MLflow experiment {experiment_name}"
    return list(client.search_runs([found.experiment_id]))


def test_a_local_sweep_is_a_parent_run_with_child_runs(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    outcome = run_manifest(tracked_sweep("grid", mlflow_server.url), tmp_path)
    assert outcome.code == 0, outcome.output
    runs = runs_of(mlflow_server, "exp-grid")
    parent = next(r for r in runs if r.data.tags.get("rlops.key") == "local/grid")
    children = {r.data.tags["trial"]: r for r in runs if r is not parent}
    assert set(children) == {"grid-0", "grid-1"}
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep"] == "grid"
    client = mlflow_server.client()
    for name, run in children.items():
        tags, run_dir = run.data.tags, outcome.layout.trial(name)
        record = outcome.record(name)
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["sweep"] == "grid" and tags["configuration"] == f"grid-{record.index}"
        assert tags["seed"] == str(record.seed) and run.data.params["seed"] == str(record.seed)
        lr = record.parameters["config.training.lr"]
        assert run.data.params["config.training.lr"] == str(lr)
        assert run.info.status == "FINISHED" and tags["rlops.phase"] == "Succeeded"
        # Every iteration, with the timesteps as the step, as progress.jsonl has it.
        progress = read_progress(run_dir)
        history = client.get_metric_history(run.info.run_id, "episode_return_mean")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
            (p.timesteps, p.episode_return_mean) for p in progress
        ]
        assert len(progress) == 4
        result = read_result(run_dir)
        assert result is not None
        assert run.data.metrics["best_episode_return_mean"] == result.best_episode_return_mean
        assert result.best_checkpoint  # relative to the run directory; logged as a full path
        assert tags["best_checkpoint"] == str(run_dir / result.best_checkpoint)
    best_trial = parent.data.tags["best_trial"]
    assert best_trial in children
    assert parent.data.params["best.config.training.lr"] == str(
        outcome.record(best_trial).parameters["config.training.lr"]
    )


def test_a_retried_attempt_continues_the_same_run(
    mlflow_server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)  # The default URI.
    manifest = tracked_sweep(
        "retry", None, environment={"id": "CartPole-v1", "config": {"fail_attempts": 1}}
    )
    manifest["spec"]["maxAttempts"] = 2
    outcome = run_manifest(manifest, tmp_path)
    assert outcome.code == 0, outcome.output
    runs = runs_of(mlflow_server, "exp-retry")
    children = [r for r in runs if "trial" in r.data.tags]
    assert sorted(r.data.tags["trial"] for r in children) == ["retry-0", "retry-1"]  # one each
    client = mlflow_server.client()
    for run in children:
        record = outcome.record(run.data.tags["trial"])
        assert len(record.launches) == 2  # failed once, then succeeded: two attempts
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "iteration")]
        assert steps == sorted(set(steps)) or sorted(steps) == sorted(set(steps))
        progress = read_progress(outcome.layout.trial(run.data.tags["trial"]))
        assert sorted(steps) == [p.timesteps for p in progress]
        assert run.info.status == "FINISHED"


def test_an_experiment_is_one_run_and_a_dead_server_does_not_stop_training(
    tmp_path: Path,
) -> None:
    manifest = (
        experiment("solo")
        .stop(iterations=3)
        .set("spec.tracking", {"mlflow": {"trackingUri": "http://127.0.0.1:9"}})
        .obj()
    )
    outcome = run_manifest(manifest, tmp_path)
    assert outcome.code == 0, outcome.output
    assert "tracking:" in outcome.output
