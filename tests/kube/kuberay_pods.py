"""What KubeRay (v1.7) adds to the pods of a RayJob, for the test bed's KubeRay stand-in and
its Pod Security admission (read from KubeRay v1.7.0's source).

- **The submitter.** `submissionMode` (default `K8sJobMode`, the CRD's default):
  - `SidecarMode`: KubeRay appends its own `ray-job-submitter` container to the head pod
    (`GetDefaultSubmitterContainer`: the head's image, fixed resources and no
    securityContext, which cannot be customised) and sets the head's `restartPolicy: Never`;
    the container submits to `http://127.0.0.1:<dashboard port>`, the head pod's loopback.
  - `K8sJobMode`: a Kubernetes Job from `submitterPodTemplate` (KubeRay's default template,
    the same bare container, when there is none) submits to the head service's dashboard.
  - `HTTPMode`: no submitter; KubeRay's operator posts the job to the dashboard.
- **Token authentication** (`rayClusterSpec.authOptions.mode: token`): KubeRay keeps a random
  token (32 bytes, base64) in a Secret named after the RayCluster (key `auth_token`), unless
  `authOptions.secretName` names one, and gives every Ray container and the submitter
  `RAY_AUTH_MODE=token` and `RAY_AUTH_TOKEN` from that Secret (`SetContainerTokenAuthEnvVars`).
  Its dashboard client sends the token as `x-ray-authorization: Bearer <token>`.
"""

from __future__ import annotations

import base64
import copy
import secrets
from typing import Any

Obj = dict[str, Any]
SUBMITTER = "ray-job-submitter"
SIDECAR_MODE = "SidecarMode"
K8S_JOB_MODE = "K8sJobMode"
# KubeRay's default submitter container resources.
SUBMITTER_RESOURCES = {"limits": {"cpu": "1", "memory": "1Gi"},
                       "requests": {"cpu": "500m", "memory": "200Mi"}}  # fmt: skip
AUTH_MODE_ENV = "RAY_AUTH_MODE"
AUTH_TOKEN_ENV = "RAY_AUTH_TOKEN"
AUTH_TOKEN_KEY = "auth_token"
AUTH_HEADER = "x-ray-authorization"


def submission_mode(rayjob_spec: Obj) -> str:
    return str(rayjob_spec.get("submissionMode") or K8S_JOB_MODE)


def default_submitter_container(cluster_spec: Obj) -> Obj:
    """KubeRay's `GetDefaultSubmitterContainer`: the head's image, no securityContext."""
    head = ((cluster_spec.get("headGroupSpec") or {}).get("template") or {}).get("spec") or {}
    image = ((head.get("containers") or [{}])[0]).get("image")
    return {"name": SUBMITTER, "image": image, "resources": copy.deepcopy(SUBMITTER_RESOURCES)}


def head_pod_spec(rayjob_spec: Obj) -> Obj:
    """The head pod KubeRay makes of a RayJob: in SidecarMode with its submitter container."""
    cluster = rayjob_spec.get("rayClusterSpec") or {}
    template = (cluster.get("headGroupSpec") or {}).get("template") or {}
    pod: Obj = copy.deepcopy(template.get("spec") or {})
    if submission_mode(rayjob_spec) == SIDECAR_MODE:
        pod["containers"] = [*(pod.get("containers") or []), default_submitter_container(cluster)]
        pod["restartPolicy"] = "Never"
    return pod


def submitter_pod_spec(rayjob_spec: Obj) -> Obj | None:
    """The K8sJobMode submitter pod (`GetSubmitterTemplate`), None in the other modes."""
    if submission_mode(rayjob_spec) != K8S_JOB_MODE:
        return None
    given = rayjob_spec.get("submitterPodTemplate")
    if given:
        return copy.deepcopy(given.get("spec") or {})
    cluster = rayjob_spec.get("rayClusterSpec") or {}
    return {"containers": [default_submitter_container(cluster)], "restartPolicy": "Never"}


def auth_enabled(cluster_spec: Obj) -> bool:
    """KubeRay's `IsAuthEnabled`: `authOptions.mode` is `token`."""
    return (cluster_spec.get("authOptions") or {}).get("mode") == "token"


def auth_secret_name(cluster: str, cluster_spec: Obj) -> str:
    return str((cluster_spec.get("authOptions") or {}).get("secretName") or cluster)


def add_auth_env(container: Obj, cluster: str, cluster_spec: Obj) -> None:
    """`SetContainerTokenAuthEnvVars`: the mode and the token from the Secret, unless the
    container sets them itself."""
    if not auth_enabled(cluster_spec):
        return
    env = container.setdefault("env", [])
    given = {v.get("name") for v in env}
    if AUTH_MODE_ENV not in given:
        env.append({"name": AUTH_MODE_ENV, "value": "token"})
    if AUTH_TOKEN_ENV not in given:
        ref = {"name": auth_secret_name(cluster, cluster_spec), "key": AUTH_TOKEN_KEY}
        env.append({"name": AUTH_TOKEN_ENV, "valueFrom": {"secretKeyRef": ref}})


def auth_secret(cluster: Obj) -> Obj | None:
    """The token Secret KubeRay creates for a RayCluster (owned by it), if it creates one."""
    spec, meta = cluster.get("spec") or {}, cluster["metadata"]
    if not auth_enabled(spec) or (spec.get("authOptions") or {}).get("secretName"):
        return None
    token = base64.b64encode(secrets.token_bytes(32)).decode()
    owner = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "name": meta["name"],
             "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": meta["name"],
            "labels": {"ray.io/cluster": meta["name"]},
            "ownerReferences": [owner],
        },
        "type": "Opaque",
        "data": {AUTH_TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def auth_headers(token: str | None) -> dict[str, str]:
    """The header KubeRay's dashboard client sends (none without a token)."""
    return {AUTH_HEADER: f"Bearer {token}"} if token else {}
