"""KubeRay v1.7's former trap, in the KubeRay stand-in's container mode with the image's real
Ray (marker containers): a RayJob with token authentication whose dashboard listens on the
head pod's 127.0.0.1 (`dashboard-host: 127.0.0.1`, rlops's former default) and SidecarMode.
The sidecar submits at the pod's loopback and the job runs to its end, but KubeRay's operator
cannot read it from outside the pod, so the RayJob fails with
`JobDeploymentStatusTransitionGracePeriodExceeded` 30 s after the submitter finished, as on a
KubeRay v1.7 cluster. (That the head's dashboard answers at the head's address only with
KubeRay's token is checked in tests/containers/test_pause_in_image.py.)

Real: podman, the image, Ray's dashboard, GCS and token checks, `ray job submit`. The
Kubernetes API is the test bed's emulator; KubeRay's operator is the stand-in.
"""

from __future__ import annotations

from typing import Any

import kubernetes.client
import pytest

from tests.kube.test_pod_containers import api, head_pod, job_status, pods, rayjob  # noqa: F401
from tests.waiting import wait_until

pytestmark = pytest.mark.containers


def former_default(body: dict[str, Any]) -> dict[str, Any]:
    """Token authentication, the dashboard on the pod's loopback, SidecarMode."""
    cluster = body["spec"]["rayClusterSpec"]
    cluster["authOptions"] = {"mode": "token"}
    cluster["headGroupSpec"]["rayStartParams"] = {"dashboard-host": "127.0.0.1"}
    body["spec"]["submissionMode"] = "SidecarMode"
    return body


def finished(api: kubernetes.client.CustomObjectsApi, ns: str, name: str) -> bool:  # noqa: F811
    return job_status(api, ns, name).get("jobDeploymentStatus") in ("Complete", "Failed")


def test_a_dashboard_on_the_head_pod_s_loopback_fails_the_rayjob_as_on_kuberay(
    api: kubernetes.client.CustomObjectsApi,  # noqa: F811
    kuberay: Any,
    kube_namespace: str,
    pods: Any,  # noqa: F811
) -> None:
    from tests.containers.podman import build_image

    body = former_default(rayjob("lo", "sleep 5", head_pod(build_image()), {}))
    api.create_namespaced_custom_object("ray.io", "v1", kube_namespace, "rayjobs", body)
    wait_until(lambda: finished(api, kube_namespace, "lo"), timeout=400, interval=0.5)
    status = job_status(api, kube_namespace, "lo")
    log = kuberay.driver_log(kube_namespace, "lo")
    assert status["jobDeploymentStatus"] == "Failed", status
    assert status["reason"] == "JobDeploymentStatusTransitionGracePeriodExceeded", status
    assert "succeeded" in log.lower(), log  # the sidecar saw the job run to its end
