"""RayJobs on a RayCluster of their own (`clusterSelector`), under the KubeRay operator (the
stand-in here, the real one on a cluster).

Covers: a RayCluster created with `suspend: true` (Kueue's hold) stays `suspended` until
resumed, then becomes `ready`; a clusterSelector RayJob waits in Initializing until the
cluster is there and ready, runs on it (its `rayClusterName` is the selected cluster's) and
completes, leaving the cluster in place for the next one; two RayJobs share the cluster; and
KubeRay's validation refuses `suspend` on such a RayJob (ValidationFailed). The entrypoints
are tiny shell commands (the stand-in runs them as local processes).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube.fixtures import KubeTestBed
from tests.kube.test_kuberay_standin import RayJobs, jobs, rayjob  # noqa: F401 (the fixture)
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def raycluster(name: str, **spec: Any) -> dict[str, Any]:
    """A small valid RayCluster: the cluster of test_kuberay_standin's RayJob."""
    cluster_spec = rayjob(name, "true")["spec"]["rayClusterSpec"]
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {**cluster_spec, **spec},
    }


def on_cluster(name: str, cluster: str, entrypoint: str, **spec: Any) -> dict[str, Any]:
    """test_kuberay_standin's RayJob, on the RayCluster `cluster` instead of its own."""
    job = rayjob(name, entrypoint, clusterSelector={"ray.io/cluster": cluster},
                 submissionMode="HTTPMode", **spec)  # fmt: skip
    del job["spec"]["rayClusterSpec"]
    return job


def test_rayjobs_share_a_cluster_that_waited_for_admission(
    jobs: RayJobs,  # noqa: F811
    kube: KubeTestBed,
) -> None:
    custom = jobs.api

    def cluster_state() -> str | None:
        body = jobs.get("shared", "rayclusters")
        return ((body or {}).get("status") or {}).get("state")

    jobs.create(on_cluster("first", "shared", "echo one"))
    jobs.wait_for("first", "Initializing")  # no cluster yet: it waits
    custom.create_namespaced_custom_object(
        "ray.io", "v1", jobs.ns, "rayclusters", raycluster("shared", suspend=True)
    )
    assert wait_until(lambda: cluster_state() == "suspended", 20 * jobs.patience)
    assert jobs.status("first")["jobDeploymentStatus"] == "Initializing"
    custom.patch_namespaced_custom_object(
        "ray.io", "v1", jobs.ns, "rayclusters", "shared", {"spec": {"suspend": False}}
    )
    status = jobs.wait_for("first", "Complete")
    assert status["rayClusterName"] == "shared" and status["jobStatus"] == "SUCCEEDED"
    jobs.create(on_cluster("second", "shared", "echo two"))
    assert jobs.wait_for("second", "Complete")["rayClusterName"] == "shared"
    assert cluster_state() == "ready"  # the jobs leave their cluster in place
    jobs.delete("first")
    wait_until(lambda: jobs.get("first") is None, 20 * jobs.patience)
    assert jobs.get("shared", "rayclusters") is not None


def test_kuberay_refuses_suspend_with_a_cluster_selector(jobs: RayJobs) -> None:  # noqa: F811
    jobs.create(on_cluster("held", "shared", "true", suspend=True))
    status = jobs.wait_for("held", "ValidationFailed")
    assert "suspend" in status["message"] and status["reason"] == "ValidationFailed"
