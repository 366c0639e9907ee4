"""The RayCluster (ray.io/v1) a Sweep's trials share, rendered by one pure function.

It is one trial's cluster (builder.py's `cluster_spec`, restricted pods and KubeRay's token
authentication alike) grown to hold `parallelism` trials at once: the head pod gets
`parallelism` times one trial's head share (Ray runs each job's driver on the head, and a
one-node trial trains there), the worker group `parallelism` times a trial's workers. So
Kueue, seeing the queue label and `suspend: true`, admits the whole sweep's capacity at once,
and KubeRay resumes the cluster on admission. The cluster is owned by the Sweep (deleted
with it); the operator deletes it when the sweep ends.
"""

from __future__ import annotations

from typing import Any

from kubernetes.utils import parse_quantity

from rlops.api.experiment import RLExperiment, RLExperimentSpec
from rlops.api.kinds import Kind
from rlops.api.meta import ObjectMeta
from rlops.api.settings import Settings
from rlops.api.sweep import Sweep
from rlops.backends.kuberay.builder import (
    LABEL_KUEUE_QUEUE,
    LABEL_MANAGED_BY,
    RAYJOB_API_VERSION,
    cluster_spec,
    container_resources,
    node_resources,
)
from rlops.backends.kuberay.security import TOKEN_ENV
from rlops.backends.kuberay.shared import SWEEP_LABEL, shared_cluster_name

RAYCLUSTERS = Kind("ray.io", "v1", "rayclusters")


def scaled_memory(memory: str | None, times: int) -> str | None:
    """A memory quantity `times` over, in bytes (None stays None)."""
    return None if memory is None else str(int(parse_quantity(memory) * times))  # type: ignore[no-untyped-call]


def sweep_owner(sweep: Sweep) -> dict[str, Any]:
    meta = sweep.metadata
    return {"apiVersion": sweep.api_version, "kind": sweep.kind, "name": meta.name,
            "uid": meta.uid, "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def _grow_head(spec: dict[str, Any], trial: RLExperiment, times: int) -> None:
    head = spec["headGroupSpec"]
    cpus, gpus, memory = node_resources(trial)
    container = head["template"]["spec"]["containers"][0]
    container["resources"] = container_resources(cpus * times, gpus * times,
                                                 scaled_memory(memory, times))  # fmt: skip
    # No one trial's progress token on the shared head: each job brings its own.
    container["env"] = [e for e in container.get("env") or [] if e.get("name") != TOKEN_ENV]
    params = head["rayStartParams"]
    for key in ("num-cpus", "num-gpus"):
        if key in params:
            params[key] = str(int(params[key]) * times)


def build_shared_cluster(
    sweep: Sweep, trial_spec: RLExperimentSpec, settings: Settings
) -> dict[str, Any]:
    """The RayCluster of a Sweep with `sharedCluster`, for trials of `trial_spec` (the
    template with the sweep's placement merged in)."""
    meta = sweep.metadata
    if not (meta.name and meta.namespace and meta.uid):
        raise ValueError("metadata: name, namespace and uid are needed to render a RayCluster")
    name = shared_cluster_name(meta.name)
    trial = RLExperiment(metadata=ObjectMeta(name=name, namespace=meta.namespace),
                         spec=trial_spec)  # fmt: skip
    times = max(sweep.spec.parallelism, 1)
    spec = cluster_spec(trial, settings, {SWEEP_LABEL: meta.name})
    _grow_head(spec, trial, times)
    for group in spec.get("workerGroupSpecs") or []:
        for key in ("replicas", "minReplicas", "maxReplicas"):
            group[key] = int(group[key]) * times
    labels = {SWEEP_LABEL: meta.name, LABEL_MANAGED_BY: "rlops"}
    k8s = trial_spec.placement.kubernetes
    queue = k8s.queue if k8s is not None else None
    if queue:
        labels[LABEL_KUEUE_QUEUE] = queue
        spec["suspend"] = True  # Kueue admits the whole cluster, then KubeRay starts it
    return {
        "apiVersion": RAYJOB_API_VERSION,
        "kind": "RayCluster",
        "metadata": {
            "name": name,
            "namespace": meta.namespace,
            "labels": labels,
            "ownerReferences": [sweep_owner(sweep)],
        },
        "spec": spec,
    }
