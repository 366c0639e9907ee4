"""What makes a rendered Ray pod acceptable under Pod Security `restricted`, and its token.

Every pod template the builder renders (head, workers, the K8sJobMode submitter) gets the
same pod and container security contexts: not root, no privilege escalation, every Linux
capability dropped and the runtime's default seccomp profile. No service-account token is
mounted unless the experiment names a ServiceAccount (then it asked for one).

The per-experiment progress token lives in a Secret owned by the RLExperiment (deleted
with it) and reaches the head container as `valueFrom.secretKeyRef`: it is never written
into the RayJob, which more people may read than Secrets.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

SECCOMP = {"type": "RuntimeDefault"}
POD_SECURITY: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": SECCOMP}
CONTAINER_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": SECCOMP,
}
TOKEN_ENV = "RLOPS_PROGRESS_TOKEN"
TOKEN_KEY = "token"


def restrict(pod: dict[str, Any], service_account: str | None) -> dict[str, Any]:
    """`pod` (a PodSpec) with the restricted security contexts on it and every container."""
    pod["securityContext"] = copy.deepcopy(POD_SECURITY)
    for container in pod.get("containers") or []:
        container["securityContext"] = copy.deepcopy(CONTAINER_SECURITY)
    if service_account:
        pod["serviceAccountName"] = service_account
    else:
        pod["automountServiceAccountToken"] = False
    return pod


def token_secret_name(experiment_name: str) -> str:
    return f"{experiment_name}-progress"


def token_env(experiment_name: str) -> dict[str, Any]:
    """The env var that reads the progress token from the experiment's Secret."""
    ref = {"name": token_secret_name(experiment_name), "key": TOKEN_KEY}
    return {"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": ref}}


def token_secret(
    name: str, namespace: str, token: str, owner: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any]:
    """The Secret holding one experiment's progress token, owned by the experiment."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token_secret_name(name),
            "namespace": namespace,
            "labels": dict(labels),
            "ownerReferences": [owner],
        },
        "type": "Opaque",
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }
