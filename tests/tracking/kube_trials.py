"""A tracked sweep's two trials on the Kubernetes test bed, driven as their runtimes would:
each trial's progress reaches the operator through rlops.runtime.reporter.ProgressReporter
with its own token, one record per iteration, then the final result. No training runs."""

from __future__ import annotations

import json
import time
from typing import Any

from rlops.backends.kuberay import progress_token
from rlops.runtime.reporter import ProgressReporter
from tests.builders import sweep
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import SECRET, OperatorProcess
from tests.operator.test_operator_e2e import apply
from tests.waiting import wait_until

ITERATIONS = 3


def record(iteration: int, lr: float) -> dict[str, Any]:
    ret = 20.0 + 1000 * lr * iteration
    return {"iteration": iteration, "timesteps": 500 * iteration, "time_seconds": 2.0 * iteration,
            "timestamp": time.time(), "episode_return_mean": ret}  # fmt: skip


def run_tracked_sweep(
    kube: KubeTestBed, ns: str, operator: OperatorProcess, tracking: dict[str, Any]
) -> dict[str, Any]:
    """Apply the two-trial sweep `kgrid` with `tracking`, report every trial to its end;
    returns the trials' bodies by name."""
    manifest = (
        sweep("kgrid")
        .param("config.training.lr", "grid", values=[0.001, 0.01])
        .set("spec.parallelism", 2)
        .set("spec.template.placement", {"backend": "kubernetes"})
        .set("spec.tracking", tracking)
        .obj()
    )
    apply(kube, ns, manifest)

    def trials() -> dict[str, Any] | None:
        done = kube.kubectl("get", "rlx", "-n", ns, "-o", "json", check=True)
        items = json.loads(done.stdout)["items"]
        return {i["metadata"]["name"]: i for i in items} if len(items) == 2 else None

    created: dict[str, Any] = wait_until(trials, 60, "the sweep's two trials", interval=0.5)
    for name, body in created.items():
        lr = float(body["metadata"]["annotations"]["rlops.dev/parameters"].split(": ")[1][:-1])
        url = f"http://127.0.0.1:{operator.progress_port}/progress/{ns}/{name}"
        token = progress_token(SECRET, ns, name, body["metadata"]["uid"])
        reporter = ProgressReporter(url, token, interval=0.05)
        for i in range(1, ITERATIONS + 1):
            reporter.report(record(i, lr))  # back to back: the reporter sends every one
        final = {"status": "succeeded", "exit_code": 0, "iteration": ITERATIONS,
                 "timesteps": 500 * ITERATIONS, "attempt": 1,
                 "best_episode_return_mean": 20.0 + 1000 * lr * ITERATIONS,
                 "best_checkpoint": "checkpoints/000003"}  # fmt: skip
        reporter.close(final)
    return created
