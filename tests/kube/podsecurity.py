"""Pod Security Standards, `baseline` and `restricted` (latest), as the Kubernetes docs
define them, and their admission on the test bed.

`violations(pod_spec)` lists what a PodSpec breaks, worded as the API server's Pod Security
admission words it (`allowPrivilegeEscalation != false (container "c" must set ...)`).
The checks are those of the Pod Security Standards page: baseline (host namespaces,
privileged, capabilities added, hostPath volumes, host ports, AppArmor, SELinux, /proc
mount, seccomp not Unconfined, unsafe sysctls, Windows HostProcess) and restricted (volume
types, allowPrivilegeEscalation false, runAsNonRoot true, runAsUser not 0, seccomp
RuntimeDefault or Localhost, capabilities drop ALL and add at most NET_BIND_SERVICE).

`admit(store, rt, namespace, obj)` is called by the emulator's store on create: a namespace
labelled `pod-security.kubernetes.io/enforce: restricted` (or `baseline`) refuses a Pod that
breaks its level with 403 Forbidden and the API server's message. The test bed goes one step
further than a real API server: it checks the pods KubeRay would make of a RayJob the same
way (tests/kube/kuberay_pods.py: the head with KubeRay's own submitter container in
SidecarMode, the worker groups, the K8sJobMode submitter from `submitterPodTemplate` or
KubeRay's bare default), and refuses the RayJob, where a real cluster accepts the RayJob and
KubeRay's pods are refused later.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.kube.kuberay_pods import head_pod_spec, submitter_pod_spec

Obj = dict[str, Any]
ENFORCE = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def containers(pod: Obj) -> Iterator[Obj]:
    for group in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(group) or []


def _names(items: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in items)
    return f"container {quoted}" if len(items) == 1 else f"containers {quoted}"


def baseline(pod: Obj) -> list[str]:
    out: list[str] = []
    psc = pod.get("securityContext") or {}
    all_c = list(containers(pod))
    ctx = [(c.get("name", ""), c.get("securityContext") or {}) for c in all_c]
    hosts = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)]
    if hosts:
        out.append(f"host namespaces ({', '.join(hosts)})")
    if (psc.get("windowsOptions") or {}).get("hostProcess") or any(
        (sc.get("windowsOptions") or {}).get("hostProcess") for _, sc in ctx
    ):
        out.append("hostProcess (pod or containers must not set hostProcess=true)")
    privileged = [n for n, sc in ctx if sc.get("privileged")]
    if privileged:
        out.append(
            f"privileged ({_names(privileged)} must not set securityContext.privileged=true)"
        )
    added = sorted(
        {a for _, sc in ctx for a in (sc.get("capabilities") or {}).get("add") or []}
        - BASELINE_CAPABILITIES
    )
    if added:
        out.append(f"non-default capabilities (capabilities {added} must not be added)")
    host_paths = [v["name"] for v in pod.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        out.append(f"hostPath volumes (volumes {host_paths})")
    ports = [
        n
        for n, c in zip((c.get("name", "") for c in all_c), all_c, strict=True)
        if any(p.get("hostPort") for p in c.get("ports") or [])
    ]
    if ports:
        out.append(f"hostPort ({_names(ports)} use hostPort)")
    apparmor = [(psc.get("appArmorProfile") or {}).get("type")] + [
        (sc.get("appArmorProfile") or {}).get("type") for _, sc in ctx
    ]
    if any(t not in (None, "RuntimeDefault", "Localhost") for t in apparmor):
        out.append('forbidden AppArmor profile (type must be "RuntimeDefault" or "Localhost")')
    selinux = [psc.get("seLinuxOptions") or {}] + [sc.get("seLinuxOptions") or {} for _, sc in ctx]
    if any(
        o.get("type", "") not in SELINUX_TYPES or o.get("user") or o.get("role") for o in selinux
    ):
        out.append("seLinuxOptions (forbidden type, user or role)")
    if any(sc.get("procMount", "Default") != "Default" for _, sc in ctx):
        out.append("procMount (containers must not set securityContext.procMount)")
    unconfined = [
        n for n, sc in ctx if (sc.get("seccompProfile") or {}).get("type") == "Unconfined"
    ]
    if (psc.get("seccompProfile") or {}).get("type") == "Unconfined" or unconfined:
        out.append('seccompProfile (pod or containers must not set type to "Unconfined")')
    sysctls = [s["name"] for s in psc.get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS]
    if sysctls:
        out.append(f"forbidden sysctls ({', '.join(sysctls)})")
    return out


def restricted(pod: Obj) -> list[str]:
    out = baseline(pod)
    psc = pod.get("securityContext") or {}
    ctx = [(c.get("name", ""), c.get("securityContext") or {}) for c in containers(pod)]
    volumes = [
        v["name"] for v in pod.get("volumes") or [] if not set(v) - {"name"} <= RESTRICTED_VOLUMES
    ]
    if volumes:
        out.append(f"restricted volume types (volumes {volumes} use forbidden types)")
    escalating = [n for n, sc in ctx if sc.get("allowPrivilegeEscalation") is not False]
    if escalating:
        out.append(
            f"allowPrivilegeEscalation != false ({_names(escalating)} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    undropped = [
        n for n, sc in ctx if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or [])
    ]
    added = [
        n
        for n, sc in ctx
        if set((sc.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"}
    ]
    if undropped or added:
        parts = []
        if undropped:
            parts.append(f'{_names(undropped)} must set securityContext.capabilities.drop=["ALL"]')
        if added:
            parts.append(
                f"{_names(added)} must not include capabilities other than "
                "NET_BIND_SERVICE in securityContext.capabilities.add"
            )
        out.append(f"unrestricted capabilities ({'; '.join(parts)})")
    pod_nonroot = psc.get("runAsNonRoot") is True
    rooted = [
        n
        for n, sc in ctx
        if sc.get("runAsNonRoot") is False
        or (not pod_nonroot and sc.get("runAsNonRoot") is not True)
    ]
    if rooted:
        out.append(
            f"runAsNonRoot != true (pod or {_names(rooted)} must set "
            "securityContext.runAsNonRoot=true)"
        )
    root_users = [n for n, sc in ctx if sc.get("runAsUser") == 0]
    if psc.get("runAsUser") == 0 or root_users:
        out.append("runAsUser=0 (pod and containers must not set runAsUser=0)")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    unset = [
        n
        for n, sc in ctx
        if (sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost")
        and not (pod_seccomp and "seccompProfile" not in sc)
    ]
    if unset:
        out.append(
            f"seccompProfile (pod or {_names(unset)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    return out


def violations(pod: Obj, level: str = "restricted") -> list[str]:
    """What the PodSpec `pod` breaks at `level` (nothing at `privileged`)."""
    if level == "restricted":
        return restricted(pod)
    return baseline(pod) if level == "baseline" else []


def rayjob_pods(rayjob: Obj) -> Iterator[tuple[str, Obj]]:
    """(role, PodSpec) of each pod KubeRay makes of a RayJob: the head (in SidecarMode with
    KubeRay's own submitter container), each worker group, and the K8sJobMode submitter."""
    spec = rayjob.get("spec") or {}
    cluster = spec.get("rayClusterSpec") or {}
    if (cluster.get("headGroupSpec") or {}).get("template"):
        yield "head", head_pod_spec(spec)
    for group in cluster.get("workerGroupSpecs") or []:
        yield f"workers {group.get('groupName')}", (group.get("template") or {}).get("spec") or {}
    submitter = submitter_pod_spec(spec)
    if submitter is not None:
        yield "submitter", submitter


def refusal(kind: str, obj: Obj, namespace_labels: dict[str, str]) -> str | None:
    """The API server's message when the namespace's enforced level refuses `obj`."""
    level = namespace_labels.get(ENFORCE, "privileged")
    if level not in LEVELS or level == "privileged":
        return None
    if kind == "Pod":
        found = violations(obj.get("spec") or {}, level)
    elif kind == "RayJob":
        found = [f"{role}: {v}" for role, pod in rayjob_pods(obj) for v in violations(pod, level)]
    else:
        return None
    if not found:
        return None
    return f'violates PodSecurity "{level}:latest": {", ".join(found)}'
