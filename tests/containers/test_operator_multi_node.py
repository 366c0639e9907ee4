"""An RLExperiment with `resources.nodes: 2` on the Kubernetes test bed trains on two Ray nodes,
each a pod running as a container of the image: `rlops operator` (a real process, configured
with the image and a storage claim) renders a RayJob with a head and one worker replica; the
KubeRay stand-in starts both pods from their specs (user 10001, KubeRay's `ray start`), the
worker joins the head, and the entrypoint runs in the head's container. result.json says the
run trained on 2 Ray nodes with its env runner on the worker's node, inside the image.

Real: the operator, podman, the image, Ray across two containers, RLlib. The Kubernetes API is
the test bed's emulator; the KubeRay operator is the stand-in; the pods share the host network
(an address of their own on loopback each).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rlops.api.runinfo import read_result
from tests.builders import experiment
from tests.containers.podman import IMAGE_PYTHON
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess, status_of
from tests.operator.test_operator_e2e import apply, tiny_training
from tests.waiting import wait_until

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.training]


def test_an_experiment_with_two_nodes_trains_on_a_head_and_a_worker_pod(
    kube: KubeTestBed, kube_namespace: str, kuberay: Any, pod_operator: OperatorProcess
) -> None:
    ns, storage = kube_namespace, pod_operator.workdir / "runs"
    manifest = (
        tiny_training(experiment("two-nodes"))
        .set("spec.resources", {"envRunners": 1, "nodes": 2})
        .stop(iterations=2)
        .kubernetes()
        .obj()
    )
    started = time.monotonic()
    apply(kube, ns, manifest)
    ready: list[float] = []

    def done() -> str | None:
        pod_set = kuberay.ray_pods(ns, "two-nodes")
        if pod_set is not None and pod_set.ready_after is not None and not ready:
            ready.append(pod_set.ready_after)
        phase = status_of(kube, "rlx", ns, "two-nodes").get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_until(done, 600, "the experiment to finish", interval=1.0)
    print(f"\nnodes: 2 e2e: {time.monotonic() - started:.1f} s; pods started to 2 Ray nodes "
          f"ready: {ready[0] if ready else float('nan'):.1f} s")  # fmt: skip
    status = status_of(kube, "rlx", ns, "two-nodes")
    assert phase == "Succeeded", (status, kuberay.driver_log(ns, "two-nodes")[-3000:])
    result = read_result(storage / ns / "two-nodes")
    assert result is not None and result.runtime is not None
    runtime = result.runtime
    assert runtime.python == IMAGE_PYTHON  # trained inside the image
    assert runtime.hostname.endswith("-head")  # the driver ran in the head pod
    assert runtime.ray_nodes == 2
    head_ip = runtime.ray_head.rsplit(":", 1)[0] if runtime.ray_head else None
    assert runtime.env_runner_nodes and head_ip
    assert all(node != head_ip for node in runtime.env_runner_nodes), runtime  # on the worker
