"""A pod's first container as a `podman run` command line, the way a kubelet would start it.

What is honoured: the image, `command` (the image's entrypoint) and `args`, `env` with values
from Secrets (`secretKeyRef`) and from the pod (`fieldRef`: name, namespace, IP), the pod's
and the container's `securityContext` (`runAsUser`, `runAsGroup`, `runAsNonRoot`,
`readOnlyRootFilesystem`, `capabilities`, `allowPrivilegeEscalation`), `volumeMounts` of
`emptyDir` (a fresh directory per pod) and `persistentVolumeClaim` volumes (one directory per
claim, shared by the pods that mount it), `workingDir`, and CPU and memory limits. The pod
shares the host's network (as `hostNetwork: true`), so loopback addresses, such as the
operator's progress URL in the tests, are reachable; its hostname is the pod's name.

What a kubelet refuses is refused here with the kubelet's reason (`PodRefused`):
`runAsNonRoot` for a container that would run as root, an env var from a Secret or key that
does not exist, a mount of a volume the pod does not declare, and (stand-in only) a volume
type or env source this module does not provide.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
# (namespace, secret name) -> its decoded data, or None when there is no such Secret.
SecretReader = Callable[[str, str], dict[str, str] | None]

QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
FACTORS = {"": 1, "k": 10**3, "Ki": 2**10, "M": 10**6, "Mi": 2**20, "G": 10**9, "Gi": 2**30,
           "T": 10**12, "Ti": 2**40}  # fmt: skip


class PodRefused(Exception):
    """What the kubelet would report (CreateContainerConfigError and the like)."""


@dataclass(frozen=True)
class PodContext:
    namespace: str
    name: str
    volume_root: Path  # emptyDir volumes: <volume_root>/<pod>/<volume>
    claim_root: Path  # persistentVolumeClaims: <claim_root>/<namespace>/<claim>
    image_user: str  # the image's USER ("" for root)
    claims: Mapping[str, Path] = field(default_factory=dict)  # claims with a given directory
    ip: str = "127.0.0.1"  # the pod's address (status.podIP)


def cpus(quantity: str) -> str:
    if quantity.endswith("m"):
        return str(int(quantity[:-1]) / 1000)
    return str(float(quantity))


def memory_bytes(quantity: str) -> int:
    m = QUANTITY.match(str(quantity))
    if not m or m.group(2) == "m":
        raise PodRefused(f"resources.limits.memory: {quantity!r} is not a quantity")
    return int(float(m.group(1)) * FACTORS[m.group(2) or ""])


def security(pod: Obj, container: Obj) -> Obj:
    """The container's securityContext over the pod's (the fields both may set)."""
    merged = {
        k: v
        for k, v in (pod.get("securityContext") or {}).items()
        if k in ("runAsUser", "runAsGroup", "runAsNonRoot")
    }
    merged.update(container.get("securityContext") or {})
    return merged


def user_args(ctx: Obj, image_user: str) -> list[str]:
    uid = ctx.get("runAsUser")
    image_uid = image_user.split(":", 1)[0]
    if ctx.get("runAsNonRoot"):
        if uid is None and not image_uid.isdigit() and image_uid not in ("", "root"):
            raise PodRefused(
                f"container has runAsNonRoot and image has non-numeric user ({image_uid}), "
                "cannot verify user is non-root"
            )
        effective = uid if uid is not None else int(image_uid or 0) if image_uid != "root" else 0
        if int(effective) == 0:
            raise PodRefused("container has runAsNonRoot and image will run as root")
    if uid is None:
        return []
    gid = ctx.get("runAsGroup")
    return [f"--user={uid}" + (f":{gid}" if gid is not None else "")]


def env_args(container: Obj, pod: PodContext, secrets: SecretReader) -> list[str]:
    out = []
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        if source is None:
            value = str(var.get("value", ""))
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            data = secrets(pod.namespace, ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise PodRefused(
                    f'secret "{ref["name"]}" not found'
                    if data is None
                    else f"couldn't find key {ref['key']} in Secret {pod.namespace}/{ref['name']}"
                )
            value = data[ref["key"]]
        elif "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            values = {"metadata.name": pod.name, "metadata.namespace": pod.namespace,
                      "status.podIP": pod.ip}  # fmt: skip
            if field not in values:
                raise PodRefused(f"env {name}: fieldRef {field} is not provided by the stand-in")
            value = values[field]
        else:
            raise PodRefused(f"env {name}: {sorted(source)} is not provided by the stand-in")
        out.append(f"--env={name}={value}")
    return out


def volume_args(spec: Obj, container: Obj, pod: PodContext) -> list[str]:
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    out = []
    for i, mount in enumerate(container.get("volumeMounts") or []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise PodRefused(
                f"spec.containers[0].volumeMounts[{i}].name: Not found: {mount['name']!r}"
            )
        if "emptyDir" in volume:
            host = pod.volume_root / pod.name / mount["name"]
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            host = pod.claims.get(claim) or pod.claim_root / pod.namespace / claim
        else:
            kinds = sorted(set(volume) - {"name"})
            raise PodRefused(f"volume {mount['name']}: {kinds} is not provided by the stand-in")
        host.mkdir(parents=True, exist_ok=True)
        host.chmod(0o777)  # as a kubelet makes emptyDir: any uid of the pod may write
        if mount.get("subPath"):
            host = host / mount["subPath"]
            host.mkdir(parents=True, exist_ok=True)
            host.chmod(0o777)
        read_only = ":ro" if mount.get("readOnly") else ""
        out.append(f"--volume={host}:{mount['mountPath']}{read_only}")
    return out


def podman_run_args(spec: Obj, pod: PodContext, secrets: SecretReader) -> list[str]:
    """`podman run` arguments (after `podman run`) for the pod spec's first container."""
    container = spec["containers"][0]
    ctx = security(spec, container)
    args = ["--rm", "--init", f"--name={pod.namespace}-{pod.name}", "--network=host",
            f"--hostname={pod.name}"]  # fmt: skip
    args += user_args(ctx, pod.image_user)
    if ctx.get("readOnlyRootFilesystem"):
        # podman would mount tmpfs at /tmp, /var/tmp and /run; a kubelet mounts no such thing.
        args += ["--read-only", "--read-only-tmpfs=false"]
    caps = ctx.get("capabilities") or {}
    args += [f"--cap-drop={c}" for c in caps.get("drop") or []]
    args += [f"--cap-add={c}" for c in caps.get("add") or []]
    if ctx.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    limits = (container.get("resources") or {}).get("limits") or {}
    if "cpu" in limits:
        args.append(f"--cpus={cpus(str(limits['cpu']))}")
    if "memory" in limits:
        args.append(f"--memory={memory_bytes(str(limits['memory']))}")
    args += env_args(container, pod, secrets)
    args += volume_args(spec, container, pod)
    if container.get("workingDir"):
        args.append(f"--workdir={container['workingDir']}")
    if container.get("command"):
        args.append(f"--entrypoint={json.dumps(container['command'])}")
    return [*args, container["image"], *(container.get("args") or [])]


def secret_names(spec: Obj) -> set[str]:
    """The Secrets the first container's env reads."""
    env = spec["containers"][0].get("env") or []
    return {
        v["valueFrom"]["secretKeyRef"]["name"]
        for v in env
        if "secretKeyRef" in (v.get("valueFrom") or {})
    }


@dataclass
class PodmanPods:
    """The stand-in's container mode: where pod volumes live, and podman's environment."""

    env: dict[str, str]
    root: Path
    # Claims backed by a given host directory (e.g. the operator's storage path in the
    # tests); the others get <root>/claims/<namespace>/<claim>.
    claims: dict[str, Path] = field(default_factory=dict)

    @property
    def volume_root(self) -> Path:
        return self.root / "emptydir"

    @property
    def claim_root(self) -> Path:
        return self.root / "claims"

    def claim(self, namespace: str, name: str) -> Path:
        """The host directory of a PersistentVolumeClaim."""
        return self.claims.get(name) or self.claim_root / namespace / name
