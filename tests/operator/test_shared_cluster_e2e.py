"""A Sweep with `placement.kubernetes.sharedCluster` on the Kubernetes test bed, without
containers: `rlops operator` (a real process) makes the sweep's RayCluster, the KubeRay
stand-in makes it ready and runs each trial's clusterSelector RayJob on it (as a local
process: the command trainer of manifests/examples/command-sweep.yaml), every trial
succeeds with its own status, and the operator deletes the cluster once the sweep is done.
tests/containers/test_shared_cluster_in_image.py runs the same in the image's containers.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import (
    OperatorProcess,
    get,
    kubernetes_command_sweep,
    names,
    status_of,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_the_trials_share_one_cluster_that_goes_with_the_sweep(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess, kuberay: Any
) -> None:
    ns = kube_namespace
    sweep = kubernetes_command_sweep()
    name = sweep["metadata"]["name"]
    cluster = f"{name}-ray"
    sweep["spec"]["placement"] = {"kubernetes": {"sharedCluster": True}}
    kube.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(sweep), check=True)
    seen: dict[str, Any] = {}

    def done() -> str | None:
        body = get(kube, "raycluster", ns, cluster)
        if body is not None:
            seen["cluster"] = body
        for job in names(kube, "rayjob", ns, f"rlops.dev/sweep={name}"):
            seen[job] = get(kube, "rayjob", ns, job) or seen.get(job)
        phase = status_of(kube, "sweep", ns, name).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(done, 240, "the sweep to finish", interval=1.0) == "Succeeded"
    owner = seen["cluster"]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Sweep", name)
    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert trials == [f"{name}-0", f"{name}-1"]
    for trial in trials:
        status = status_of(kube, "rlx", ns, trial)
        assert status["phase"] == "Succeeded", (trial, status)
        assert status["progress"]["iteration"] >= 1  # its progress, with its own token
        job = seen[trial]
        assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster}
        assert job["status"]["rayClusterName"] == cluster
    assert wait_until(lambda: get(kube, "raycluster", ns, cluster) is None, 30,
                      "the shared cluster to be deleted")  # fmt: skip
