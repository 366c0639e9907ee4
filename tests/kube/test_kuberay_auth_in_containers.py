"""KubeRay v1.7's token authentication and submission modes in the KubeRay stand-in's container
mode, with the image's real Ray (marker containers).

- `authOptions: {mode: token}` with `dashboard-host: 0.0.0.0` and K8sJobMode (KubeRay's
  default submitter pod): the stand-in makes KubeRay's token Secret, the head's real Ray
  dashboard answers its job API at the head's address only with the token (401 without),
  the submitter pod submits with it, and the stand-in reads the job to SUCCEEDED with it.
- The former default (`dashboard-host: 127.0.0.1`, SidecarMode): the sidecar submits at the
  pod's loopback and the job runs, but KubeRay's operator cannot read it from outside the
  pod, so the RayJob fails with `JobDeploymentStatusTransitionGracePeriodExceeded` 30 s after
  the submitter finished, as on a KubeRay v1.7 cluster.

Real: podman, the image, Ray's dashboard, GCS and token checks, `ray job submit`. The
Kubernetes API is the test bed's emulator; KubeRay's operator is the stand-in.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import kubernetes.client
import pytest

from tests.kube.fixtures import KubeTestBed
from tests.kube.kuberay_pods import auth_headers
from tests.kube.test_pod_containers import api, head_pod, job_status, pods, rayjob  # noqa: F401
from tests.waiting import wait_until

pytestmark = pytest.mark.containers


def with_auth(body: dict[str, Any], dashboard_host: str, mode: str) -> dict[str, Any]:
    cluster = body["spec"]["rayClusterSpec"]
    cluster["authOptions"] = {"mode": "token"}
    cluster["headGroupSpec"]["rayStartParams"] = {"dashboard-host": dashboard_host}
    body["spec"]["submissionMode"] = mode
    return body


def get(url: str, token: str | None) -> tuple[int, Any]:
    """GET `url` as KubeRay's dashboard client does (the token, if any): status and JSON."""
    request = urllib.request.Request(url, headers=auth_headers(token))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, None


def finished(api: kubernetes.client.CustomObjectsApi, ns: str, name: str) -> bool:  # noqa: F811
    return job_status(api, ns, name).get("jobDeploymentStatus") in ("Complete", "Failed")


def test_the_dashboard_answers_only_with_kuberay_s_token(
    api: kubernetes.client.CustomObjectsApi,  # noqa: F811
    kube: KubeTestBed,
    kuberay: Any,
    kube_namespace: str,
    pods: Any,  # noqa: F811
) -> None:
    from tests.containers.podman import build_image

    body = with_auth(rayjob("tok", "sleep 20", head_pod(build_image()), {}), "0.0.0.0",
                     "K8sJobMode")  # fmt: skip
    api.create_namespaced_custom_object("ray.io", "v1", kube_namespace, "rayjobs", body)
    wait_until(
        lambda: job_status(api, kube_namespace, "tok").get("jobStatus") == "RUNNING",
        timeout=300, interval=0.5,
    )  # fmt: skip
    status = job_status(api, kube_namespace, "tok")
    pod_set = kuberay.ray_pods(kube_namespace, "tok")
    with kube.api_client() as client:
        secret = kubernetes.client.CoreV1Api(client).read_namespaced_secret(
            status["rayClusterName"], kube_namespace
        )
    token = base64.b64decode(secret.data["auth_token"]).decode()
    assert token == pod_set.auth_token
    url = f"{pod_set.dashboard}/api/jobs/{status['jobId']}"  # the head's (service) address
    assert get(url, None)[0] == 401
    assert get(url, "wrong")[0] in (401, 403)
    code, job = get(url, token)
    assert code == 200 and job["status"] in ("RUNNING", "SUCCEEDED"), job
    wait_until(lambda: finished(api, kube_namespace, "tok"), timeout=180, interval=0.5)
    status = job_status(api, kube_namespace, "tok")
    log = kuberay.driver_log(kube_namespace, "tok")
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Complete", "SUCCEEDED"), log
    assert f"Job '{status['jobId']}' submitted successfully" in log  # the submitter pod's


def test_a_dashboard_on_the_head_pod_s_loopback_fails_the_rayjob_as_on_kuberay(
    api: kubernetes.client.CustomObjectsApi,  # noqa: F811
    kuberay: Any,
    kube_namespace: str,
    pods: Any,  # noqa: F811
) -> None:
    from tests.containers.podman import build_image

    body = with_auth(rayjob("lo", "sleep 5", head_pod(build_image()), {}), "127.0.0.1",
                     "SidecarMode")  # fmt: skip
    api.create_namespaced_custom_object("ray.io", "v1", kube_namespace, "rayjobs", body)
    wait_until(lambda: finished(api, kube_namespace, "lo"), timeout=400, interval=0.5)
    status = job_status(api, kube_namespace, "lo")
    log = kuberay.driver_log(kube_namespace, "lo")
    assert status["jobDeploymentStatus"] == "Failed", status
    assert status["reason"] == "JobDeploymentStatusTransitionGracePeriodExceeded", status
    assert "succeeded" in log.lower(), log  # the sidecar saw the job run to its end
