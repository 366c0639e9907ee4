"""MLflow tracking by the operator (a real `rlops operator` process on the Kubernetes test
bed, a real MLflow server): a tracked Sweep's trials are created as usual; progress reaches
the operator as the runtime sends it (rlops.runtime.reporter.ProgressReporter, with each
trial's own token, one record per iteration, then the final result), and the operator
records the sweep as a parent run, each trial as a child run with its tags, params,
per-iteration metrics (timesteps as the step) and the checkpoint path in its run
directory. No training runs here: the RayJobs are created but not run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess
from tests.tracking.kube_trials import run_tracked_sweep
from tests.tracking.mlflow_server import MlflowServer
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_a_sweep_on_kubernetes_is_tracked_by_the_operator(
    kube: KubeTestBed, kube_namespace: str, tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    ns = kube_namespace
    operator = OperatorProcess(kube, ns, tmp_path)
    tracking = {"mlflow": {"trackingUri": mlflow_server.url, "experimentName": f"kube-{ns}"}}
    try:
        operator.start()
        run_tracked_sweep(kube, ns, operator, tracking)
        client = mlflow_server.client()

        def tracked() -> list[Any] | None:
            found = client.get_experiment_by_name(f"kube-{ns}")
            if found is None:
                return None
            runs = client.search_runs([found.experiment_id])
            children = [
                r
                for r in runs
                if r.data.tags.get("rlops.phase") == "Succeeded" and r.info.status == "FINISHED"
            ]
            return runs if len(children) == 2 else None

        runs = wait_until(tracked, 60, "two finished child runs in MLflow", interval=0.5)
    finally:
        operator.stop()
    parent = next(r for r in runs if r.data.tags.get("rlops.key") == f"{ns}/kgrid")
    children = {r.data.tags["trial"]: r for r in runs if "trial" in r.data.tags}
    assert set(children) == {"kgrid-0", "kgrid-1"}
    storage = tmp_path / "runs"
    for name, run in children.items():
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id and tags["sweep"] == "kgrid"
        assert tags["configuration"] == name and "config.training.lr" in run.data.params
        history = client.get_metric_history(run.info.run_id, "episode_return_mean")
        assert sorted(m.step for m in history) == [500, 1000, 1500]
        assert tags["best_checkpoint"] == f"{storage}/{ns}/{name}/checkpoints/000003"
        assert run.info.status == "FINISHED"
