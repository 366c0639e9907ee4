"""MLflow tracking of `rlops run --backend slurm` on the real single-node SLURM cluster of the
runner tests (fake runtime in the batch jobs, so it takes seconds): the trials' batch jobs
have no tracking settings at all; the runner, reading their run directories, records the
sweep as a parent run with one child run per trial and every iteration's metrics."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlops.api.runinfo import read_progress
from rlops.runner.layout import SweepLayout
from tests.runner.test_slurm_run import cluster, lr_sweep, run_in_process
from tests.slurm.fake_runtime import fake_python
from tests.slurm.slurm_cluster import SlurmCluster
from tests.tracking.mlflow_server import MlflowServer

__all__ = ["cluster"]


@pytest.mark.slurm
def test_a_slurm_sweep_is_tracked_from_the_driver(
    cluster: SlurmCluster, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    python = str(fake_python(tmp_path))
    manifest = (
        lr_sweep("hpc-grid", 2, python, {"iterations": 3})
        .set(
            "spec.tracking",
            {"mlflow": {"trackingUri": mlflow_server.url, "experimentName": "slurm-sweep"}},
        )
        .obj()
    )
    root = Path(os.path.realpath(tmp_path)) / "runs"
    code, commands = run_in_process(manifest, root, cluster)
    assert code == 0 and "sbatch" in commands
    client = mlflow_server.client()
    found = client.get_experiment_by_name("slurm-sweep")
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("rlops.key") == "local/hpc-grid")
    children = {r.data.tags["trial"]: r for r in runs if "trial" in r.data.tags}
    assert set(children) == {"hpc-grid-0", "hpc-grid-1"}
    layout = SweepLayout(root / "hpc-grid")
    for name, run in children.items():
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "episode_return_mean")
        progress = read_progress(layout.trial(name))
        assert sorted((m.step, m.value) for m in history) == [
            (p.timesteps, p.episode_return_mean) for p in progress
        ]
        assert len(progress) == 3
    assert parent.info.status == "FINISHED"
