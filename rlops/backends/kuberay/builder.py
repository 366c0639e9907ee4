"""The RayJob (ray.io/v1) of an RLExperiment, rendered by one pure function.

The RayJob carries an inline `rayClusterSpec`: a head group and, for multi-node
experiments, one worker group of `nodes - 1` replicas. Every node gets the same
share of the experiment's CPUs, GPUs and memory (requests equal limits, so the
pods are Guaranteed and Ray's resource view matches the pod's). The runtime is
the entrypoint; it reports progress to the operator with a per-experiment token
that the head container reads from the experiment's own Secret (`progress_secret`), so
training pods need no Kubernetes rights and the RayJob holds no credential.

Every pod meets Pod Security `restricted` (see `security.py`). The cluster asks KubeRay
for Ray's token authentication (`authOptions: {mode: token}`): KubeRay then keeps a random
token in a Secret of the RayCluster, gives it to every Ray container and to its submitter
(`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN`), and its own dashboard client sends it. So the
dashboard listens on the head pod's address, where KubeRay's operator (job status, stop)
and the submitter pod reach it, and refuses requests without the token. The job is
submitted by the rendered, restricted submitter pod (`K8sJobMode`, the settings' default):
in `SidecarMode` KubeRay would add a submitter container of its own, without a
securityContext, to the head pod. A pause point in `rlops.dev/pause-at` reaches the runtime
as RLOPS_PAUSE_AT_ITERATION.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import math
import shlex
from typing import Any

import yaml

from rlops.api.annotations import pause_at
from rlops.api.experiment import KubernetesPlacement, RLExperiment
from rlops.api.settings import Settings
from rlops.backends.kuberay.security import TOKEN_ENV, restrict, token_env, token_secret
from rlops.backends.kuberay.shared import SWEEP_LABEL, on_shared_cluster, shared_cluster_of

RAYJOB_API_VERSION = "ray.io/v1"
LABEL_EXPERIMENT = "rlops.dev/experiment"
LABEL_ATTEMPT = "rlops.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
# Labels of an experiment copied onto its RayJob, so `kubectl get rayjobs -l` works per sweep.
PROPAGATED_LABELS = ("rlops.dev/sweep", "rlops.dev/trial", "rlops.dev/seed")

HEAD_PORTS = (("gcs-server", 6379), ("dashboard", 8265), ("client", 10001))
SIDECAR_MODE = "SidecarMode"
K8S_JOB_MODE = "K8sJobMode"
# Ray's token authentication, managed by KubeRay (v1.7): the token Secret, its env in every
# Ray container and the submitter, and its dashboard client's `x-ray-authorization` header.
AUTH_OPTIONS = {"mode": "token"}
# Where the dashboard listens: every address of the head pod (the token guards it).
DASHBOARD_HOST = "0.0.0.0"
SUBMITTER_RESOURCES = {"cpu": "500m", "memory": "256Mi"}
# A stopped Ray job (KubeRay stops it when its RayJob is deleted: a stop or a pause) gets
# SIGTERM from Ray's job supervisor, then SIGKILL after this many seconds (Ray's default: 3).
# The driver finishes its iteration and checkpoints in that time; it stays within the head
# pod's termination grace period (30 s), during which the pod's processes still run.
JOB_STOP_WAIT = {"name": "RAY_JOB_STOP_WAIT_TIME_S", "value": "25"}


def progress_token(secret: str, namespace: str, name: str, uid: str) -> str:
    """The bearer token with which one experiment's runtime may report its progress."""
    message = f"{namespace}/{name}/{uid}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def progress_url(settings: Settings, namespace: str, name: str) -> str:
    return f"{settings.progress_url.rstrip('/')}/progress/{namespace}/{name}"


def storage_root(experiment: RLExperiment, settings: Settings) -> str:
    """Where run directories go: the spec's storage path, else the operator's."""
    return experiment.spec.storage.path or settings.storage_path


def storage_claim(experiment: RLExperiment, settings: Settings) -> str | None:
    """The claim mounted at the storage root: the spec's, else the operator's; none for an
    object store (the runtime mirrors the run directory there itself)."""
    if "://" in storage_root(experiment, settings):
        return None
    return experiment.spec.storage.persistent_volume_claim or settings.storage_claim


def run_dir(experiment: RLExperiment, settings: Settings) -> str:
    """`<storage root>/<namespace>/<name>` (a path or an `s3://`/`gs://` URI)."""
    meta = experiment.metadata
    return f"{storage_root(experiment, settings).rstrip('/')}/{meta.namespace}/{meta.name}"


def spec_b64(experiment: RLExperiment) -> str:
    """The experiment as the runtime reads it: a compact, key-sorted manifest in base64."""
    meta = experiment.metadata
    metadata: dict[str, Any] = {"name": meta.name, "namespace": meta.namespace}
    if shared_cluster_of(experiment):  # a sweep's trial: its validation asks for the label
        metadata["labels"] = {SWEEP_LABEL: meta.labels[SWEEP_LABEL]}
    manifest = {
        "apiVersion": experiment.api_version,
        "kind": experiment.kind,
        "metadata": metadata,
        "spec": experiment.spec.dump(),
    }
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def entrypoint(experiment: RLExperiment, settings: Settings) -> str:
    argv = [
        settings.python, "-m", "rlops.runtime",
        "--spec-b64", spec_b64(experiment),
        "--run-dir", run_dir(experiment, settings),
    ]  # fmt: skip
    return shlex.join(argv)


def cpu_quantity(cpus: float) -> str:
    """A CPU count as a Kubernetes quantity: whole cores, else millicores."""
    millis = math.ceil(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def node_resources(experiment: RLExperiment) -> tuple[float, int, str | None]:
    """CPUs, GPUs and memory of each Ray node: an even share of what the experiment needs."""
    res = experiment.spec.resources
    nodes = max(res.nodes, 1)
    cpus = math.ceil(res.total_cpus() * 1000 / nodes) / 1000
    gpus = math.ceil(res.total_gpus() / nodes) if res.gpus_per_learner else 0
    return cpus, gpus, res.memory


def container_resources(cpus: float, gpus: int, memory: str | None) -> dict[str, Any]:
    amounts: dict[str, str] = {"cpu": cpu_quantity(cpus)}
    if memory:
        amounts["memory"] = memory
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


STORAGE_VOLUME = "rlops-storage"


# Variables an object-store client reads (pyarrow's S3; a GCS endpoint for rlops.runtime.storage),
# taken from RLOPS_STORAGE_SECRET.
STORE_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST",
)  # fmt: skip


def store_env(experiment: RLExperiment, settings: Settings) -> list[dict[str, Any]]:
    """The object store's credentials from the operator's storage Secret, each key optional."""
    if settings.storage_secret is None or "://" not in storage_root(experiment, settings):
        return []
    return [
        {"name": key, "valueFrom": {"secretKeyRef": {
            "name": settings.storage_secret, "key": key, "optional": True,
        }}}
        for key in STORE_VARIABLES
    ]  # fmt: skip


def mount_storage(pod: dict[str, Any], experiment: RLExperiment, settings: Settings) -> None:
    """Mount the storage claim, if any, at the storage root in the pod's containers; give
    them the object store's credentials, if the operator has a storage Secret."""
    if env := store_env(experiment, settings):
        for container in pod["containers"]:
            container.setdefault("env", []).extend(copy.deepcopy(env))
    claim = storage_claim(experiment, settings)
    if claim is None:
        return
    volume = {"name": STORAGE_VOLUME, "persistentVolumeClaim": {"claimName": claim}}
    pod.setdefault("volumes", []).append(volume)
    mount = {"name": STORAGE_VOLUME, "mountPath": storage_root(experiment, settings)}
    for container in pod["containers"]:
        container.setdefault("volumeMounts", []).append(dict(mount))


def pod_template(
    container: dict[str, Any],
    experiment: RLExperiment,
    labels: dict[str, str],
    settings: Settings,
) -> dict[str, Any]:
    placement = experiment.spec.placement.kubernetes or KubernetesPlacement()
    pod: dict[str, Any] = {"containers": [container]}
    mount_storage(pod, experiment, settings)  # run directories shared by every pod
    restrict(pod, placement.service_account)
    if placement.node_selector:
        pod["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod["tolerations"] = [t.dump() for t in placement.tolerations]
    return {"metadata": {"labels": dict(labels)}, "spec": pod}


def ray_cpus(cpus: float, driver_cpus: float, head: bool, workers: int) -> int:
    """The CPUs a Ray node offers to tasks and actors (Ray counts whole CPUs).

    One node: its pod's share, floored (at least 1), the driver beside the env runners.
    Several: the head keeps the driver's CPUs for the driver (KubeRay's advice of
    `num-cpus: 0` on a busy head), so the env runners go to the workers, which offer their
    share rounded up so that together the nodes still hold every runner (as on SLURM, where
    the head offers `cpus-per-task - driverCpus`).
    """
    if not workers:
        return max(1, math.floor(cpus))
    if head:
        return max(0, math.floor(cpus - driver_cpus))
    return max(1, math.ceil(cpus))


def ray_start_params(cpus: int, gpus: int, head: bool) -> dict[str, str]:
    params = {"num-cpus": str(cpus)}
    if gpus:
        params["num-gpus"] = str(gpus)
    if head:
        params["dashboard-host"] = DASHBOARD_HOST
    return params


def cluster_spec(
    experiment: RLExperiment, settings: Settings, labels: dict[str, str]
) -> dict[str, Any]:
    image = experiment.spec.image or settings.image
    cpus, gpus, memory = node_resources(experiment)
    resources = container_resources(cpus, gpus, memory)
    head = {
        "name": "ray-head",
        "image": image,
        "resources": resources,
        "ports": [{"name": name, "containerPort": port} for name, port in HEAD_PORTS],
        "env": [token_env(experiment.metadata.name or ""), dict(JOB_STOP_WAIT)],
    }
    head_template = pod_template(head, experiment, labels, settings)
    if settings.submission_mode == SIDECAR_MODE:
        head_template["spec"]["restartPolicy"] = "Never"  # as KubeRay's SidecarMode requires
    workers = max(experiment.spec.resources.nodes, 1) - 1
    driver = experiment.spec.resources.driver_cpus
    spec: dict[str, Any] = {
        "rayVersion": settings.ray_version,
        "authOptions": dict(AUTH_OPTIONS),
        "headGroupSpec": {
            "rayStartParams": ray_start_params(
                ray_cpus(cpus, driver, True, workers), gpus, head=True
            ),
            "template": head_template,
        },
    }
    if workers:
        worker = {"name": "ray-worker", "image": image, "resources": copy.deepcopy(resources)}
        spec["workerGroupSpecs"] = [
            {
                "groupName": "workers",
                "replicas": workers,
                "minReplicas": workers,
                "maxReplicas": workers,
                "rayStartParams": ray_start_params(
                    ray_cpus(cpus, driver, False, workers), gpus, head=False
                ),
                "template": pod_template(worker, experiment, labels, settings),
            }
        ]
    return spec


def runtime_env_yaml(experiment: RLExperiment, settings: Settings) -> str:
    meta = experiment.metadata
    assert meta.namespace and meta.name and meta.uid, "a stored RLExperiment has all three"
    env = {
        "RLOPS_PROGRESS_URL": progress_url(settings, meta.namespace, meta.name),
        "RLOPS_DRIVER_LOG": "true",  # attempts/<n>.log in the run directory outlives the pods
    }
    if shared_cluster_of(experiment):  # the shared head reads no trial's Secret (shared.py)
        secret = settings.secret.get_secret_value()
        env[TOKEN_ENV] = progress_token(secret, meta.namespace, meta.name, meta.uid)
    at = pause_at(meta.annotations)
    if at is not None:  # the run checkpoints and ends by itself there (a sweep's ASHA rung)
        env["RLOPS_PAUSE_AT_ITERATION"] = str(at)
    return yaml.safe_dump({"env_vars": env}, sort_keys=True)


def progress_secret(experiment: RLExperiment, settings: Settings) -> dict[str, Any]:
    """The Secret with the experiment's progress token, which its head container reads."""
    meta = experiment.metadata
    assert meta.namespace and meta.name and meta.uid, "a stored RLExperiment has all three"
    token = progress_token(settings.secret.get_secret_value(), meta.namespace, meta.name, meta.uid)
    labels = {LABEL_EXPERIMENT: meta.name, LABEL_MANAGED_BY: "rlops"}
    return token_secret(meta.name, meta.namespace, token, owner_reference(experiment), labels)


def submitter_template(
    experiment: RLExperiment, settings: Settings, labels: dict[str, str]
) -> dict[str, Any]:
    """KubeRay's K8sJobMode submitter pod, restricted like the Ray pods (KubeRay fills in
    the `ray job submit` command)."""
    container = {
        "name": "ray-job-submitter",
        "image": experiment.spec.image or settings.image,
        "resources": {"requests": dict(SUBMITTER_RESOURCES), "limits": dict(SUBMITTER_RESOURCES)},
    }
    template = pod_template(container, experiment, labels, settings)  # the claim mounted too
    template["spec"]["restartPolicy"] = "Never"
    return template


def rayjob_labels(experiment: RLExperiment, attempt: int) -> dict[str, str]:
    meta = experiment.metadata
    assert meta.name
    labels = {LABEL_EXPERIMENT: meta.name, LABEL_ATTEMPT: str(attempt), LABEL_MANAGED_BY: "rlops"}
    labels.update({k: v for k, v in meta.labels.items() if k in PROPAGATED_LABELS})
    return labels


def owner_reference(experiment: RLExperiment) -> dict[str, Any]:
    meta = experiment.metadata
    return {
        "apiVersion": experiment.api_version,
        "kind": experiment.kind,
        "name": meta.name,
        "uid": meta.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_rayjob(experiment: RLExperiment, settings: Settings, attempt: int = 1) -> dict[str, Any]:
    """The RayJob that runs `attempt` of a stored RLExperiment (it needs its name and uid)."""
    meta = experiment.metadata
    if not (meta.name and meta.namespace and meta.uid):
        raise ValueError("metadata: name, namespace and uid are needed to render a RayJob")
    spec = experiment.spec
    placement = spec.placement.kubernetes or KubernetesPlacement()
    shared = shared_cluster_of(experiment)
    labels = rayjob_labels(experiment, attempt)
    if placement.queue and not shared:  # a shared cluster is admitted as a whole
        labels[LABEL_KUEUE_QUEUE] = placement.queue
    pod_labels = {LABEL_EXPERIMENT: meta.name}
    mode = settings.submission_mode
    rayjob_spec: dict[str, Any] = {
        "entrypoint": entrypoint(experiment, settings),
        "runtimeEnvYAML": runtime_env_yaml(experiment, settings),
        # KubeRay runs no clusterSelector RayJob in SidecarMode: its submitter pod does.
        "submissionMode": K8S_JOB_MODE if shared and mode == SIDECAR_MODE else mode,
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": placement.ttl_seconds_after_finished,
        "preRunningDeadlineSeconds": placement.pre_running_deadline_seconds,
        "backoffLimit": 0,
        "rayClusterSpec": cluster_spec(experiment, settings, pod_labels),
    }
    if rayjob_spec["submissionMode"] == K8S_JOB_MODE:
        rayjob_spec["submitterPodTemplate"] = submitter_template(experiment, settings, pod_labels)
    if spec.stop.wall_time_seconds is not None:
        deadline = math.ceil(spec.stop.wall_time_seconds) + settings.deadline_margin_seconds
        rayjob_spec["activeDeadlineSeconds"] = deadline
    if placement.queue:
        rayjob_spec["suspend"] = True
    if shared:
        rayjob_spec = on_shared_cluster(rayjob_spec, shared)
    return {
        "apiVersion": RAYJOB_API_VERSION,
        "kind": "RayJob",
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(experiment)],
        },
        "spec": rayjob_spec,
    }
