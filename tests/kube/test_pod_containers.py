"""Ray pods as podman containers (tests/kube/pod_containers.py and the KubeRay stand-in's
container mode).

Pure: a head pod's spec becomes the `podman run` arguments a kubelet's settings amount to
(user, read-only root, capabilities, no-new-privileges, limits, env from Secrets and the pod,
emptyDir and claim volumes, entrypoint), and what a kubelet refuses is refused with its
reason (runAsNonRoot for root, a missing Secret or key, a mount of an undeclared volume).

With podman (marker containers): a RayJob in the API emulator whose head pod runs as 10001
with a read-only root, all capabilities dropped, a token from a Secret, an emptyDir at /tmp and
a claim at /data (a PersistentVolumeClaim of the emulator) starts Ray there and trains an
RLExperiment in the image (the entrypoint submitted to the head's dashboard by a submitter
container, run by Ray's job supervisor in the head's container), reporting progress
to a loopback URL;
a pod that runs as root under runAsNonRoot never starts (the RayJob stays Initializing and the
refusal names the reason); a driver writing where no volume is mounted fails with a read-only
file system. The image is real, the Kubernetes API the test bed's emulator.
"""

from __future__ import annotations

import base64
import json
import shlex
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from rlops.api.runinfo import read_result
from tests.builders import experiment
from tests.kube.fixtures import KubeTestBed
from tests.kube.pod_containers import PodContext, PodmanPods, PodRefused, podman_run_args
from tests.kube.test_kuberay_standin import rayjob as small_rayjob
from tests.kube.volume_claims import claim
from tests.waiting import wait_until

CONTEXT = PodContext("team", "job-head", Path("/v"), Path("/c"), "10001:10001")
SECRETS = {"tokens": {"token": "s3cret"}}


def pod(**container: Any) -> dict[str, Any]:
    return {"containers": [{"name": "ray-head", "image": "localhost/rlops:0.1.0", **container}]}


def args(spec: dict[str, Any], tmp_path: Path, image_user: str = "10001:10001") -> list[str]:
    context = PodContext("team", "job-head", tmp_path / "v", tmp_path / "c", image_user)
    return podman_run_args(spec, context, lambda ns, name: SECRETS.get(name))


def test_a_pod_spec_becomes_the_podman_run_a_kubelet_would_do(tmp_path: Path) -> None:
    spec = pod(
        command=["/bin/sh", "-c"],
        args=["echo hi"],
        env=[
            {"name": "PLAIN", "value": "1"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "token"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        securityContext={
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        },
        resources={"limits": {"cpu": "1500m", "memory": "2Gi"}},
        volumeMounts=[
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "runs", "mountPath": "/data", "subPath": "exp"},
            {"name": "conf", "mountPath": "/conf", "readOnly": True},
        ],
    )
    spec["securityContext"] = {"runAsUser": 10001, "runAsGroup": 10001, "runAsNonRoot": True}
    spec["volumes"] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "runs", "persistentVolumeClaim": {"claimName": "rlops-runs"}},
        {"name": "conf", "emptyDir": {}},
    ]
    out = args(spec, tmp_path)
    assert out[-2:] == ["localhost/rlops:0.1.0", "echo hi"]
    assert '--entrypoint=["/bin/sh", "-c"]' in out
    for expected in (
        "--network=host", "--hostname=job-head", "--user=10001:10001", "--read-only",
        "--read-only-tmpfs=false", "--cap-drop=ALL", "--cap-add=NET_BIND_SERVICE",
        "--security-opt=no-new-privileges",
        "--cpus=1.5", f"--memory={2 * 2**30}", "--env=PLAIN=1", "--env=TOKEN=s3cret",
        "--env=POD=job-head",
        f"--volume={tmp_path}/v/job-head/tmp:/tmp",
        f"--volume={tmp_path}/c/team/rlops-runs/exp:/data",
        f"--volume={tmp_path}/v/job-head/conf:/conf:ro",
    ):  # fmt: skip
        assert expected in out, expected
    assert (tmp_path / "c" / "team" / "rlops-runs" / "exp").is_dir()


@pytest.mark.parametrize(
    ("change", "image_user", "reason"),
    [
        ({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}, "10001",
         "container has runAsNonRoot and image will run as root"),
        ({"securityContext": {"runAsNonRoot": True}}, "",
         "container has runAsNonRoot and image will run as root"),
        ({"securityContext": {"runAsNonRoot": True}}, "rlops",
         "image has non-numeric user (rlops), cannot verify user is non-root"),
        ({"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]},
         "10001", 'secret "gone" not found'),
        ({"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "k"}}}]},
         "10001", "couldn't find key k in Secret team/tokens"),
        ({"volumeMounts": [{"name": "data", "mountPath": "/data"}]}, "10001",
         "volumeMounts[0].name: Not found: 'data'"),
    ],
)  # fmt: skip
def test_what_a_kubelet_refuses_is_refused_with_its_reason(
    change: dict[str, Any], image_user: str, reason: str, tmp_path: Path
) -> None:
    with pytest.raises(PodRefused) as refused:
        args(pod(**change), tmp_path, image_user)
    assert str(refused.value).endswith(reason)


def test_an_optional_secret_that_is_missing_leaves_its_variable_unset(tmp_path: Path) -> None:
    ref = {"name": "gone", "key": "k", "optional": True}
    out = args(pod(env=[{"name": "T", "valueFrom": {"secretKeyRef": ref}}]), tmp_path)
    assert not any(a.startswith("--env=T=") for a in out)


# --- with podman ---------------------------------------------------------------------------


class ProgressSink(BaseHTTPRequestHandler):
    received: list[tuple[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.path, self.headers.get("Authorization") or ""))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def progress_url() -> Iterator[str]:
    """An HTTP server on loopback recording the progress posts (the operator's endpoint)."""
    ProgressSink.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ProgressSink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/progress/team/exp"
    server.shutdown()


@pytest.fixture
def pods(kuberay: Any, kube_namespace: str, tmp_path: Path) -> Iterator[PodmanPods]:
    if not getattr(kuberay, "emulated", False):
        pytest.skip("container mode is the stand-in's (a real cluster runs real pods)")
    from tests.containers.podman import podman_settings_or_skip

    pods = PodmanPods(podman_settings_or_skip(tmp_path), tmp_path / "pods")
    kuberay.run_in_containers(kube_namespace, pods)
    yield pods
    kuberay.run_in_containers(kube_namespace, None)


def head_pod(image: str, **security: Any) -> dict[str, Any]:
    container = {
        "name": "ray-head",
        "image": image,
        "env": [
            {"name": "HOME", "value": "/tmp"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "tokens", "key": "token"}}},
        ],
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": 10001, "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, **security,
        },
        "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                         {"name": "runs", "mountPath": "/data"}],
    }  # fmt: skip
    volumes = [{"name": "tmp", "emptyDir": {}},
               {"name": "runs", "persistentVolumeClaim": {"claimName": "rlops-runs"}}]  # fmt: skip
    return {"containers": [container], "volumes": volumes}


def rayjob(name: str, entrypoint: str, head: dict[str, Any], env: dict[str, str]) -> Any:
    body = small_rayjob(name, entrypoint, runtimeEnvYAML=json.dumps({"env_vars": env}))
    body["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"] = head
    return body


@pytest.fixture
def api(kube: KubeTestBed, kube_namespace: str) -> Iterator[kubernetes.client.CustomObjectsApi]:
    with kube.api_client() as client:
        secret = {"metadata": {"name": "tokens"},
                  "data": {"token": base64.b64encode(b"from-the-secret").decode()}}  # fmt: skip
        core = kubernetes.client.CoreV1Api(client)
        core.create_namespaced_secret(kube_namespace, secret)
        core.create_namespaced_persistent_volume_claim(kube_namespace, claim("rlops-runs"))
        yield kubernetes.client.CustomObjectsApi(client)


def job_status(api: kubernetes.client.CustomObjectsApi, ns: str, name: str) -> dict[str, Any]:
    body = api.get_namespaced_custom_object("ray.io", "v1", ns, "rayjobs", name)
    return body.get("status") or {}


@pytest.mark.containers
@pytest.mark.training
def test_a_rayjob_trains_in_its_head_pods_container(
    api: kubernetes.client.CustomObjectsApi,
    kuberay: Any,
    kube_namespace: str,
    pods: PodmanPods,
    progress_url: str,
) -> None:
    from tests.containers.podman import IMAGE_PYTHON, build_image

    image = build_image()
    manifest = experiment("exp").set("spec.stop", {"iterations": 1}).obj()
    spec = base64.b64encode(json.dumps(manifest).encode()).decode()
    # KubeRay puts the entrypoint unquoted into the submitter's shell line: shell operators
    # go inside a shell of the entrypoint's own.
    entrypoint = shlex.join([
        "/bin/sh", "-c",
        f"printenv TOKEN > /data/token && python -m rlops.runtime --spec-b64 {spec} "
        "--run-dir /data/exp",
    ])  # fmt: skip
    env = {"RLOPS_PROGRESS_URL": progress_url, "RLOPS_PROGRESS_TOKEN": "tkn"}
    api.create_namespaced_custom_object(
        "ray.io", "v1", kube_namespace, "rayjobs", rayjob("exp", entrypoint, head_pod(image), env)
    )
    wait_until(
        lambda: (
            job_status(api, kube_namespace, "exp").get("jobDeploymentStatus")
            in ("Complete", "Failed")
        ),
        timeout=300,
        interval=0.5,
    )
    status = job_status(api, kube_namespace, "exp")
    log = kuberay.driver_log(kube_namespace, "exp")
    assert status["jobStatus"] == "SUCCEEDED", log[-3000:]
    claim = pods.claim(kube_namespace, "rlops-runs")
    assert (claim / "token").read_text().strip() == "from-the-secret"
    result = read_result(claim / "exp")
    assert result is not None and result.status == "succeeded"
    assert result.runtime is not None and result.runtime.python == IMAGE_PYTHON
    assert result.runtime.hostname.endswith("-head")  # the pod's name
    assert (claim / "exp" / "result.json").stat().st_uid == 10001
    assert ("/progress/team/exp", "Bearer tkn") in ProgressSink.received


@pytest.mark.containers
def test_a_pod_a_kubelet_refuses_never_starts(
    api: kubernetes.client.CustomObjectsApi, kuberay: Any, kube_namespace: str, pods: PodmanPods
) -> None:
    from tests.containers.podman import build_image

    head = head_pod(build_image(), runAsUser=0)
    api.create_namespaced_custom_object(
        "ray.io", "v1", kube_namespace, "rayjobs", rayjob("root", "true", head, {})
    )
    wait_until(
        lambda: kuberay.refusal(kube_namespace, "root") is not None,
        timeout=60,
    )
    assert kuberay.refusal(kube_namespace, "root") == (
        "container has runAsNonRoot and image will run as root"
    )
    assert job_status(api, kube_namespace, "root")["jobDeploymentStatus"] == "Initializing"


@pytest.mark.containers
def test_writing_where_no_volume_is_mounted_fails_on_a_read_only_root(
    api: kubernetes.client.CustomObjectsApi, kuberay: Any, kube_namespace: str, pods: PodmanPods
) -> None:
    from tests.containers.podman import build_image

    head = head_pod(build_image())
    api.create_namespaced_custom_object(
        "ray.io", "v1", kube_namespace, "rayjobs",
        rayjob("nowhere", shlex.join(["/bin/sh", "-c", "echo x > /home/rlops/out"]), head, {}),
    )  # fmt: skip
    wait_until(
        lambda: job_status(api, kube_namespace, "nowhere").get("jobStatus") == "FAILED",
        timeout=120,
        interval=0.5,
    )
    # The job's message, from Ray's job API, ends with the driver's output.
    message = job_status(api, kube_namespace, "nowhere")["message"]
    assert "Read-only file system" in message, message
