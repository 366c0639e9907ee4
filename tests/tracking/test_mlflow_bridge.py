"""MLflow tracking by the SLURM bridge (the real SLURM test cluster, the Kubernetes test bed,
a real MLflow server; the fake runtime in the batch job): a sweep's trial placed on SLURM
is tracked from the progress.jsonl and result.json the bridge reads at each poll, as a
child run of its sweep's parent run, every iteration with the timesteps as the step, and
terminated when the experiment succeeds. The batch job itself has no network settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlops.api.runinfo import read_progress
from tests.slurm.conftest import cli_client, slurm_cluster, slurm_settings
from tests.slurm.fake_runtime import fake_python
from tests.slurm.test_bridge import World, cartpole, world
from tests.tracking.mlflow_server import MlflowServer

__all__ = ["cli_client", "slurm_cluster", "slurm_settings", "world"]


@pytest.mark.slurm
@pytest.mark.e2e
def test_a_slurm_trial_is_tracked_by_the_bridge(
    world: World, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    builder = (
        cartpole("bgrid-1", python=str(fake_python(tmp_path)))
        .stop(iterations=3)
        .set("metadata.labels", {"rlops.dev/sweep": "bgrid", "rlops.dev/trial": "1"})
        .set("metadata.annotations", {"rlops.dev/parameters": json.dumps({"x": 2})})
        .set("spec.tracking", {"mlflow": {"trackingUri": mlflow_server.url,
                                          "experimentName": f"bridge-{world.namespace}"}})
    )  # fmt: skip
    world.create(builder)
    bridge = world.bridge()
    world.poll_until(bridge, lambda: world.status("bgrid-1").get("phase") == "Succeeded", 120)
    client = mlflow_server.client()
    found = client.get_experiment_by_name(f"bridge-{world.namespace}")
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("rlops.key") == f"{world.namespace}/bgrid")
    [child] = [r for r in runs if r.data.tags.get("trial") == "bgrid-1"]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags["configuration"] == "bgrid-1" and child.data.params["x"] == "2"
    assert child.info.status == "FINISHED"
    run_dir = world.backend.settings.run_root / world.namespace / "bgrid-1"
    history = client.get_metric_history(child.info.run_id, "episode_return_mean")
    progress = read_progress(run_dir)
    assert len(progress) == 3
    assert sorted((m.step, m.value) for m in history) == [
        (p.timesteps, p.episode_return_mean) for p in progress
    ]
    assert child.data.tags["best_checkpoint"] == f"{run_dir}/checkpoints/iteration-000003"
