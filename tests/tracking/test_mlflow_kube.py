"""MLflow tracking by the operator (a real `rlops operator` process on the Kubernetes test
bed, a real MLflow server): a tracked Sweep's trials are created as usual; progress reaches
the operator as the runtime sends it (rlops.runtime.reporter.ProgressReporter, with each
trial's own token, one record per iteration, then the final result), and the operator
records the sweep as a parent run, each trial as a child run with its tags, params,
per-iteration metrics (timesteps as the step) and the checkpoint path in its run
directory. No training runs here: the RayJobs are created but not run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from rlops.backends.kuberay import progress_token
from rlops.runtime.reporter import ProgressReporter
from tests.builders import sweep
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import SECRET, OperatorProcess
from tests.operator.test_operator_e2e import apply
from tests.tracking.mlflow_server import MlflowServer
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def record(iteration: int, lr: float) -> dict[str, Any]:
    ret = 20.0 + 1000 * lr * iteration
    return {"iteration": iteration, "timesteps": 500 * iteration, "time_seconds": 2.0 * iteration,
            "timestamp": time.time(), "episode_return_mean": ret}  # fmt: skip


def test_a_sweep_on_kubernetes_is_tracked_by_the_operator(
    kube: KubeTestBed, kube_namespace: str, tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    ns = kube_namespace
    operator = OperatorProcess(kube, ns, tmp_path)
    manifest = (
        sweep("kgrid")
        .param("config.training.lr", "grid", values=[0.001, 0.01])
        .set("spec.parallelism", 2)
        .set("spec.template.placement", {"backend": "kubernetes"})
        .set(
            "spec.tracking",
            {"mlflow": {"trackingUri": mlflow_server.url, "experimentName": f"kube-{ns}"}},
        )
        .obj()
    )
    try:
        operator.start()
        apply(kube, ns, manifest)

        def trials() -> dict[str, Any] | None:
            done = kube.kubectl("get", "rlx", "-n", ns, "-o", "json", check=True)
            items = json.loads(done.stdout)["items"]
            return {i["metadata"]["name"]: i for i in items} if len(items) == 2 else None

        created = wait_until(trials, 60, "the sweep's two trials", interval=0.5)
        for name, body in created.items():
            lr = float(body["metadata"]["annotations"]["rlops.dev/parameters"].split(": ")[1][:-1])
            url = f"http://127.0.0.1:{operator.progress_port}/progress/{ns}/{name}"
            token = progress_token(SECRET, ns, name, body["metadata"]["uid"])
            reporter = ProgressReporter(url, token, interval=0.05)
            for i in range(1, 4):
                reporter.report(record(i, lr))
                sent = lambda r=reporter, i=i: r.sent >= i  # noqa: E731
                wait_until(sent, 30, f"record {i} of {name} sent", interval=0.5)
            final = {"status": "succeeded", "exit_code": 0, "iteration": 3, "timesteps": 1500,
                     "best_episode_return_mean": 20.0 + 3000 * lr, "attempt": 1,
                     "best_checkpoint": "checkpoints/000003"}  # fmt: skip
            reporter.close(final)

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
