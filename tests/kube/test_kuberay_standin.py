"""RayJobs under the KubeRay operator (the stand-in here, the real one on a cluster).

Covers: a succeeding entrypoint reaches Complete/SUCCEEDED with KubeRay's
status fields; a failing one Failed/AppFailed; `backoffLimit` retries;
`activeDeadlineSeconds` (DeadlineExceeded); `suspend` (Suspended, resumed);
holding a RayJob in Initializing; `shutdownAfterJobFinishes` deleting the
RayCluster; deleting a running RayJob stops its process; and KubeRay's real
CRD schema refusing a malformed RayJob with 422. The entrypoints are tiny
shell and Python commands (the stand-in runs them as local processes).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client import ApiException

from tests.kube.fixtures import KubeTestBed
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def rayjob(name: str, entrypoint: str, **spec: Any) -> dict[str, Any]:
    """A small valid RayJob: one head, no workers."""
    head = {
        "rayStartParams": {},
        "template": {
            "spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.50.0"}]}
        },
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": entrypoint,
            "rayClusterSpec": {"headGroupSpec": head},
            **spec,
        },
    }


class RayJobs:
    """RayJobs of one namespace; waits are 20 times longer on a real cluster (image pulls)."""

    def __init__(
        self, api: kubernetes.client.CustomObjectsApi, namespace: str, patience: float
    ) -> None:
        self.api, self.ns, self.patience = api, namespace, patience

    def create(self, body: dict[str, Any]) -> Any:
        return self.api.create_namespaced_custom_object("ray.io", "v1", self.ns, "rayjobs", body)

    def get(self, name: str, plural: str = "rayjobs") -> Any:
        try:
            return self.api.get_namespaced_custom_object("ray.io", "v1", self.ns, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def status(self, name: str) -> dict[str, Any]:
        job = self.get(name)
        return (job or {}).get("status") or {}

    def patch(self, name: str, body: Any) -> Any:
        return self.api.patch_namespaced_custom_object(
            "ray.io", "v1", self.ns, "rayjobs", name, body
        )

    def delete(self, name: str) -> Any:
        return self.api.delete_namespaced_custom_object("ray.io", "v1", self.ns, "rayjobs", name)

    def wait_for(self, name: str, deployment: str, timeout: float = 20) -> dict[str, Any]:
        status: dict[str, Any] = wait_until(
            lambda: (s := self.status(name)).get("jobDeploymentStatus") == deployment and s,
            timeout * self.patience,
        )
        return status


@pytest.fixture
def jobs(kube: KubeTestBed, kube_namespace: str, kuberay: Any) -> Iterator[RayJobs]:
    with kube.api_client() as api:
        patience = 1.0 if kube.emulated else 20.0
        yield RayJobs(kubernetes.client.CustomObjectsApi(api), kube_namespace, patience)


def test_a_succeeding_entrypoint_completes(jobs: RayJobs, kuberay: Any) -> None:
    runtime_env = "env_vars:\n  GREETING: hi\n"
    entrypoint = (
        "python -c \"import os; print(os.environ['GREETING'], os.environ.get('RAY_ADDRESS'))\""
    )
    jobs.create(rayjob("ok", entrypoint, runtimeEnvYAML=runtime_env))
    status = jobs.wait_for("ok", "Complete")
    assert status["jobStatus"] == "SUCCEEDED"
    assert status["jobId"].startswith("ok-") and status["rayClusterName"].startswith("ok-")
    assert status["startTime"] <= status["endTime"]
    assert (status["succeeded"], status["failed"]) == (1, 0)
    assert status["message"] == "Job finished successfully."
    job = jobs.get("ok")
    assert "ray.io/rayjob-stopjob-finalizer" in job["metadata"]["finalizers"]
    cluster = jobs.get(status["rayClusterName"], "rayclusters")
    assert cluster["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    if kuberay.emulated:
        assert kuberay.driver_log(jobs.ns, "ok").strip() == "hi None"


def test_a_failing_entrypoint_fails(jobs: RayJobs) -> None:
    jobs.create(rayjob("bad", "python -c 'import sys; sys.exit(3)'"))
    status = jobs.wait_for("bad", "Failed")
    assert status["jobStatus"] == "FAILED" and status["reason"] == "AppFailed"
    assert (status["failed"], status["succeeded"]) == (1, 0)
    assert "exit code 3" in status["message"]


def test_backoff_limit_retries_with_a_new_cluster(jobs: RayJobs) -> None:
    jobs.create(rayjob("retry", "exit 1", backoffLimit=1))
    status = jobs.wait_for("retry", "Failed", timeout=30)
    assert status["failed"] == 2 and status["reason"] == "AppFailed"


def test_active_deadline_fails_a_running_job(jobs: RayJobs) -> None:
    jobs.create(rayjob("slow", "sleep 60", activeDeadlineSeconds=1, shutdownAfterJobFinishes=True))
    status = jobs.wait_for("slow", "Failed")
    assert status["reason"] == "DeadlineExceeded"
    assert "activeDeadlineSeconds" in status["message"]


def test_suspended_job_waits_until_resumed(jobs: RayJobs) -> None:
    jobs.create(rayjob("queued", "true", suspend=True))
    status = jobs.wait_for("queued", "Suspended")
    assert "rayClusterName" not in status and "jobStatus" not in status
    jobs.patch("queued", {"spec": {"suspend": False}})
    assert jobs.wait_for("queued", "Complete")["jobStatus"] == "SUCCEEDED"


def test_held_job_stays_initializing_until_released(jobs: RayJobs, kuberay: Any) -> None:
    with kuberay.holding():
        jobs.create(rayjob("pull", "true"))
        status = jobs.wait_for("pull", "Initializing")
        cluster = wait_until(lambda: jobs.get(status["rayClusterName"], "rayclusters"))
        assert (cluster.get("status") or {}).get("state") != "ready"
        assert jobs.status("pull")["jobDeploymentStatus"] == "Initializing"
    assert jobs.wait_for("pull", "Complete")["jobStatus"] == "SUCCEEDED"


def test_shutdown_after_finish_deletes_the_cluster(jobs: RayJobs) -> None:
    jobs.create(rayjob("done", "true", shutdownAfterJobFinishes=True, ttlSecondsAfterFinished=0))
    status = jobs.wait_for("done", "Complete")
    wait_until(lambda: jobs.get(status["rayClusterName"], "rayclusters") is None)
    assert jobs.get("done") is not None


def test_deleting_a_running_job_stops_its_process(
    jobs: RayJobs, tmp_path: Path, kuberay: Any
) -> None:
    if not kuberay.emulated:
        pytest.skip("the process runs inside the cluster")
    pid_file = tmp_path / "pid"
    program = (
        "import os, time; open(os.environ['PID_FILE'], 'w').write(str(os.getpid())); time.sleep(60)"
    )
    runtime_env = f"env_vars:\n  PID_FILE: {pid_file}\n"
    jobs.create(rayjob("long", f'python -c "{program}"', runtimeEnvYAML=runtime_env))
    jobs.wait_for("long", "Running")
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text()))
    jobs.delete("long")
    wait_until(lambda: jobs.get("long") is None)
    wait_until(lambda: not _alive(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kuberay_schema_refuses_a_malformed_rayjob(jobs: RayJobs) -> None:
    body = rayjob("malformed", "true", backoffLimit="three")
    body["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0][
        "ports"
    ] = [{"containerPort": "http"}]
    with pytest.raises(ApiException) as invalid:
        jobs.create(body)
    assert invalid.value.status == 422
    fields = {c["field"] for c in json.loads(invalid.value.body)["details"]["causes"]}
    assert fields == {
        "spec.backoffLimit",
        "spec.rayClusterSpec.headGroupSpec.template.spec.containers[0].ports[0].containerPort",
    }
