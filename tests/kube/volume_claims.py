"""PersistentVolumeClaims in the emulator: the kind (core/v1, namespaced, short name `pvc`)
and the rule a kubelet's scheduler applies to a pod that mounts one: the claim must exist
(`persistentvolumeclaim "<name>" not found` otherwise). There is no provisioner: the KubeRay
stand-in's container mode backs each claim by one host directory (tests/kube/pod_containers.py).
"""

from __future__ import annotations

from typing import Any

from tests.kube.resources import ResourceType

PERSISTENT_VOLUME_CLAIM = ResourceType(
    "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True,
    singular="persistentvolumeclaim", short_names=("pvc",), status_subresource=True,
)  # fmt: skip


def claim_names(pod: dict[str, Any]) -> set[str]:
    """The claims a pod spec's volumes name."""
    return {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod.get("volumes") or []
        if "persistentVolumeClaim" in v
    }


def claim(name: str, size: str = "1Gi") -> dict[str, Any]:
    """A ReadWriteMany claim manifest (what an admin creates for rlops' storage)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": size}}},
    }
