"""Every Ray pod of a RayCluster as a container (tests/kube/ray_pods.py, the KubeRay stand-in's
container mode).

Pure: a cluster spec with a worker group becomes a head and one pod per replica, each running
the `ray start` KubeRay generates from its group's rayStartParams (head: `--head` on its GCS
port; workers: `--address` of the head), on an address and ports of its own, with KubeRay's
variables; a template's own command is kept.

With podman (marker containers): a worker pod that cannot work (a read-only root and no
volume at /tmp, where `ray start` writes) crashes, and the RayJob stays Initializing with the
pod's log as the reason, as its RayCluster never becomes ready; deleting the RayJob removes
the pods' containers; a pod mounting a claim that
does not exist never starts (the scheduler's reason).
"""

from __future__ import annotations

import itertools
import shlex
import socket
import subprocess
from typing import Any

import kubernetes.client
import pytest

from tests.kube.ray_jobs import submit_command
from tests.kube.ray_pods import cluster_pods, free_subnet, listening_subnets
from tests.kube.test_pod_containers import api, head_pod, job_status, pods, rayjob  # noqa: F401
from tests.waiting import wait_until


def containers(env: dict[str, str]) -> list[str]:
    """The names of podman's containers, running or not."""
    listing = subprocess.run(
        ["podman", "ps", "--all", "--format", "{{.Names}}"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return listing.stdout.split()


def cluster(workers: int = 2) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "ray", "image": "img"}]}}
    return {
        "headGroupSpec": {"rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                          "template": template},
        "workerGroupSpecs": [{"groupName": "workers", "replicas": workers,
                              "rayStartParams": {"num-cpus": "2", "port": "1"},
                              "template": template}],
    }  # fmt: skip


def start_args(pod: Any) -> list[str]:
    container = pod.spec["containers"][0]
    assert container["command"] == ["/bin/bash", "-lc", "--"]
    line = container["args"][0]
    assert line.startswith("ulimit -n 65536; ")
    return shlex.split(line.removeprefix("ulimit -n 65536; "))


def test_the_head_and_each_worker_replica_run_ray_start_as_kuberay_generates_it() -> None:
    ray_pods, gcs = cluster_pods("c1", cluster())
    assert [p.name for p in ray_pods] == ["c1-head", "c1-workers-worker-0", "c1-workers-worker-1"]
    ips = [p.ip for p in ray_pods]
    assert len(set(ips)) == 3 and all(ip.startswith("127.") for ip in ips)
    assert gcs == f"{ips[0]}:{gcs.rsplit(':', 1)[1]}"
    head = start_args(ray_pods[0])
    assert head[:3] == ["ray", "start", "--head"] and head[-1] == "--block"
    for flag in ("--num-cpus=0", f"--node-ip-address={ips[0]}", f"--port={gcs.rsplit(':', 1)[1]}",
                 f"--dashboard-port={ray_pods[0].dashboard_port}"):  # fmt: skip
        assert flag in head, flag
    # `0.0.0.0` (every address of the pod) is the pod's own address here, never the host's.
    assert [a for a in head if a.startswith("--dashboard-host")] == [f"--dashboard-host={ips[0]}"]
    ports = []
    for pod in ray_pods[1:]:
        worker = start_args(pod)
        assert worker[:2] == ["ray", "start"] and "--head" not in worker
        assert f"--address={gcs}" in worker
        assert "--num-cpus=2" in worker and "--port=1" not in worker
        assert f"--node-ip-address={pod.ip}" in worker
        ports += [a for a in worker if a.startswith("--node-manager-port=")]
        env = {v["name"]: v["value"] for v in pod.spec["containers"][0]["env"]}
        assert env["RAY_ADDRESS"] == gcs and env["RAY_NODE_TYPE_NAME"] == "workers"
        assert env["RAY_CLUSTER_NAME"] == "c1"
    assert len(set(ports)) == 2  # each pod on ports of its own (they share the host network)


def test_a_template_with_its_own_command_keeps_it() -> None:
    spec = cluster(1)
    spec["workerGroupSpecs"][0]["template"] = {
        "spec": {"containers": [{"image": "img", "command": ["sleep"], "args": ["1"]}]}
    }
    worker = cluster_pods("c2", spec)[0][1].spec["containers"][0]
    assert (worker["command"], worker["args"]) == (["sleep"], ["1"])


def with_worker(head: dict[str, Any], worker: dict[str, Any]) -> dict[str, Any]:
    body = rayjob("two", "true", head, {})
    body["spec"]["rayClusterSpec"]["workerGroupSpecs"] = [
        {"groupName": "workers", "replicas": 1, "minReplicas": 1, "maxReplicas": 1,
         "rayStartParams": {}, "template": {"spec": worker}}
    ]  # fmt: skip
    return body


def test_a_subnet_someone_listens_in_is_skipped() -> None:
    """A Ray pod left from an earlier run (still listening on its address) never gets its
    subnet reused by a new cluster."""
    with socket.socket() as stale:
        stale.bind(("127.151.77.1", 0))
        stale.listen()
        assert "127.151.77" in listening_subnets()
        assert free_subnet(itertools.count(77)) == "127.151.78"
    assert free_subnet(itertools.count(77)) == "127.151.77"


@pytest.mark.containers
def test_a_worker_pod_that_cannot_work_keeps_the_rayjob_initializing(
    api: kubernetes.client.CustomObjectsApi,  # noqa: F811
    kuberay: Any,
    kube_namespace: str,
    pods: Any,  # noqa: F811
) -> None:
    from tests.containers.podman import build_image

    image = build_image()
    worker = head_pod(image)
    worker["containers"][0]["volumeMounts"] = []  # no /tmp: ray start cannot write there
    api.create_namespaced_custom_object(
        "ray.io", "v1", kube_namespace, "rayjobs", with_worker(head_pod(image), worker)
    )
    wait_until(lambda: kuberay.refusal(kube_namespace, "two") is not None, timeout=180)
    reason = kuberay.refusal(kube_namespace, "two")
    assert reason.startswith("pod two-") and "-workers-worker-0: container ray exited" in reason
    assert "Read-only file system" in reason, reason
    assert job_status(api, kube_namespace, "two")["jobDeploymentStatus"] == "Initializing"
    # Deleting the RayJob deletes its pods: the head's container too (the worker's is gone).
    pod_set = kuberay.ray_pods(kube_namespace, "two")
    head = pod_set.container(pod_set.head)
    assert head in containers(pods.env)
    api.delete_namespaced_custom_object("ray.io", "v1", kube_namespace, "rayjobs", "two")
    wait_until(lambda: head not in containers(pods.env), timeout=60, interval=0.5)


@pytest.mark.containers
def test_a_pod_whose_claim_does_not_exist_never_starts(
    api: kubernetes.client.CustomObjectsApi,  # noqa: F811
    kuberay: Any,
    kube_namespace: str,
    pods: Any,  # noqa: F811
) -> None:
    from tests.containers.podman import build_image

    head = head_pod(build_image())
    head["volumes"][1]["persistentVolumeClaim"]["claimName"] = "nowhere"
    api.create_namespaced_custom_object(
        "ray.io", "v1", kube_namespace, "rayjobs", rayjob("noclaim", "true", head, {})
    )
    wait_until(lambda: kuberay.refusal(kube_namespace, "noclaim") is not None, timeout=60)
    assert kuberay.refusal(kube_namespace, "noclaim") == (
        'persistentvolumeclaim "nowhere" not found'
    )
    assert kuberay.ray_pods(kube_namespace, "noclaim") is None  # no pod was started


def test_the_submitter_runs_ray_job_submit_as_kuberay_sidecar_mode_generates_it() -> None:
    command = submit_command(
        "http://127.0.0.1:8265", "job-1", "python -m x --a 'b c'", "env_vars:\n  A: '1'\n"
    )
    wait, submit = command.rsplit(" ; ", 1)
    assert wait.startswith("until python3 -c") and "http://127.0.0.1:8265/api/gcs_healthz" in wait
    assert shlex.split(submit) == [
        "ray", "job", "submit", "--address", "http://127.0.0.1:8265",
        "--runtime-env-json", '{"env_vars": {"A": "1"}}', "--submission-id", "job-1",
        "--", "python", "-m", "x", "--a", "b c",
    ]  # fmt: skip
