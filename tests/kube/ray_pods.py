"""The Ray pods of a RayJob's cluster as podman containers: what the KubeRay stand-in starts
in its container mode.

Every pod KubeRay would create runs: the head and each replica of each worker group, from the
pod templates of the `rayClusterSpec`. Each container gets the command KubeRay generates when
the template sets none (`/bin/bash -lc -- "ulimit -n 65536; ray start ... --block"`, from the
group's `rayStartParams`) and KubeRay's environment (`RAY_CLUSTER_NAME`, `RAY_ADDRESS`,
`RAY_PORT`, `RAY_NODE_TYPE_NAME`); the rest of the pod (user, read-only root, capabilities,
env from Secrets, volumes, limits) is tests/kube/pod_containers.py's.

The network: every pod shares the host's network, as a pod with `hostNetwork: true`, so that
loopback services (the operator's progress URL in the tests) are reachable from it. Each pod
has an address of its own on loopback (127.151.<cluster>.<pod>: Ray's node table tells the
nodes apart) and its own free ports for Ray's services, as hostNetwork pods sharing a machine
need.

The cluster is ready when Ray's own node table (the head's GCS) lists every pod's node alive,
the condition KubeRay's readiness probes amount to. The head's dashboard listens on a free
port: with `dashboard-host: 0.0.0.0` (or none: KubeRay's default) on the head's own address,
which stands for the head pod's address and its service, where KubeRay's operator and a
K8sJobMode submitter pod reach it; with `127.0.0.1` (the pod's loopback) on the host's
127.0.0.1, which a connection to the head's address does not reach, as on a cluster: only a
container beside the head (KubeRay's SidecarMode submitter) addresses it there.

With token authentication (`authOptions.mode: token`, tests/kube/kuberay_pods.py) every Ray
container gets `RAY_AUTH_MODE` and `RAY_AUTH_TOKEN` from KubeRay's token Secret, and the
readiness check reads the node table with the token. The RayJob's entrypoint is then
submitted through the dashboard's job API (tests/kube/ray_jobs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shlex
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.kube.kuberay_pods import add_auth_env
from tests.xdist import worker_index

Obj = dict[str, Any]

# Ray's services of one node, each on a port of its own (the head adds the GCS's).
NODE_PORTS = (
    "node-manager-port", "object-manager-port", "dashboard-agent-grpc-port",
    "dashboard-agent-listen-port", "metrics-export-port", "runtime-env-agent-port",
)  # fmt: skip
# Flags the stand-in sets itself: a `rayStartParams` entry for them is not passed twice.
OWN_FLAGS = {*NODE_PORTS, "port", "address", "node-ip-address", "block", "dashboard-port",
             "dashboard-host"}  # fmt: skip
# Each pytest-xdist worker numbers its clusters from its own block, so two workers'
# clusters never share an address.
_clusters = itertools.count(1 + 125 * ((worker_index() or 0) % 2))
SUBNETS = "127.151."  # 127.151.<cluster>.<pod>
# The test bed's own setting for every Ray pod: on a loaded shared machine the dashboard
# agent can take longer than the raylet's default wait for it (the raylet then aborts).
TEST_BED_ENV = {"RAY_agent_register_timeout_ms": "120000"}
LOOPBACK = ("127.0.0.1", "localhost")
REPOSITORY = Path(__file__).resolve().parents[2]


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (the OS picks them)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in sockets]


@dataclass
class RayPod:
    """One pod: its name, address, KubeRay's pod spec, and its `podman run` once started."""

    name: str
    group: str  # "headgroup" or the worker group's name
    ip: str
    spec: Obj
    process: asyncio.subprocess.Process | None = None
    log: Path | None = None
    dashboard_port: int | None = None  # the head's
    dashboard_host: str | None = None  # where the head's dashboard listens

    def exited(self) -> str | None:
        """Why the pod is not running (its container exited), if it is not."""
        if self.process is None or self.process.returncode is None:
            return None
        tail = self.log.read_text(errors="replace")[-2000:] if self.log else ""
        return (
            f"pod {self.name}: container ray exited with code {self.process.returncode} "
            f"(CrashLoopBackOff):\n{tail}"
        )


def ray_start(params: Obj, head: bool, ip: str, gcs: str, ports: list[int]) -> str:
    """KubeRay's generated container command: `ray start` from the group's rayStartParams,
    on this pod's address and ports."""
    flags = {k: str(v) for k, v in params.items() if k not in OWN_FLAGS}
    flags["node-ip-address"] = ip
    flags.update({name: str(port) for name, port in zip(NODE_PORTS, ports, strict=False)})
    if head:
        flags["port"] = gcs.rsplit(":", 1)[1]
        flags["dashboard-port"] = str(ports[len(NODE_PORTS)])
        # The pod's loopback or its own address (see the module's docstring).
        flags["dashboard-host"] = dashboard_host(params, ip)
    else:
        flags["address"] = gcs
    flags["min-worker-port"] = flags["max-worker-port"] = "0"  # workers: ports the OS picks
    argv = ["ray", "start", *(["--head"] if head else [])]
    argv += [f"--{k}={v}" for k, v in flags.items()]
    return "ulimit -n 65536; " + shlex.join([*argv, "--block"])


def dashboard_host(params: Obj, ip: str) -> str:
    """Where the head's dashboard listens here: the host's loopback for the pod's loopback,
    else the pod's address."""
    return "127.0.0.1" if str(params.get("dashboard-host", "")) in LOOPBACK else ip


def kuberay_pod(template: Obj, command: str, env: dict[str, str]) -> Obj:
    """The pod KubeRay makes of a group's template: its command (unless the template sets
    one) and KubeRay's variables (unless the template sets them)."""
    spec: Obj = json.loads(json.dumps((template or {}).get("spec") or {"containers": [{}]}))
    container = spec["containers"][0]
    if not container.get("command"):
        container["command"] = ["/bin/bash", "-lc", "--"]
        container["args"] = [command]
    given = {v["name"] for v in container.get("env") or []}
    extra = [{"name": k, "value": v} for k, v in env.items() if k not in given]
    container["env"] = [*(container.get("env") or []), *extra]
    return spec


def listening_subnets() -> set[str]:
    """The 127.151.N subnets some process listens in (a Ray pod of an earlier test run that
    was never removed, say): a new cluster there would meet that Ray instead of its own."""
    subnets = set()
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if fields[3] != "0A":  # not LISTEN
                continue
            ip = socket.inet_ntoa(struct.pack("<I", int(fields[1].split(":")[0], 16)))
            if ip.startswith(SUBNETS):
                subnets.add(ip.rsplit(".", 1)[0])
    return subnets


def free_subnet(numbers: Iterator[int] = _clusters) -> str:
    """The next 127.151.N subnet of this process's block that nothing listens in."""
    taken = listening_subnets()
    for _ in range(250):
        subnet = f"{SUBNETS}{next(numbers) % 250}"
        if subnet not in taken:
            return subnet
    raise RuntimeError("every 127.151.N subnet has a listener: remove stale Ray pods (podman ps)")


def cluster_pods(cluster: str, spec: Obj) -> tuple[list[RayPod], str]:
    """Every Ray pod of a RayCluster spec, head first, and the GCS address of its head."""
    subnet = free_subnet()
    head_ip = f"{subnet}.1"
    gcs = f"{head_ip}:{free_ports(1)[0]}"
    common = {"RAY_CLUSTER_NAME": cluster, "RAY_PORT": gcs.rsplit(":", 1)[1],
              "RAY_USAGE_STATS_KUBERAY_IN_USE": "1", **TEST_BED_ENV}  # fmt: skip
    head = spec.get("headGroupSpec") or {}
    ports = free_ports(len(NODE_PORTS) + 1)
    env = {**common, "RAY_ADDRESS": gcs, "RAY_NODE_TYPE_NAME": "headgroup"}
    params = head.get("rayStartParams") or {}
    pods = [
        RayPod(
            f"{cluster}-head", "headgroup", head_ip,
            kuberay_pod(head.get("template") or {},
                        ray_start(params, True, head_ip, gcs, ports), env),
            dashboard_port=ports[len(NODE_PORTS)],
            dashboard_host=dashboard_host(params, head_ip),
        )
    ]  # fmt: skip
    for group in spec.get("workerGroupSpecs") or []:
        name = group.get("groupName", "workers")
        env = {**common, "RAY_ADDRESS": gcs, "RAY_NODE_TYPE_NAME": name}
        for i in range(int(group.get("replicas", 0))):
            ip = f"{subnet}.{len(pods) + 1}"
            start = ray_start(group.get("rayStartParams") or {}, False, ip, gcs,
                              free_ports(len(NODE_PORTS)))  # fmt: skip
            pod_spec = kuberay_pod(group.get("template") or {}, start, env)
            pods.append(RayPod(f"{cluster}-{name}-worker-{i}", name, ip, pod_spec))
    for pod in pods:  # KubeRay's token env in every Ray container
        add_auth_env(pod.spec["containers"][0], cluster, spec)
    return pods, gcs


def alive_nodes(gcs: str) -> int:
    """Live nodes in the GCS's node table (what KubeRay's readiness probes amount to)."""
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    host, port = gcs.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2):
        pass  # the GCS listens (else Ray's client would retry and log for seconds)
    info = GcsClient(address=gcs).get_all_node_info(timeout=5)
    return sum(1 for node in info.values() if node.state == 0)  # 0: ALIVE


async def alive_nodes_with_token(gcs: str, token: str) -> int:
    """`alive_nodes` in a process of its own that holds the cluster's token (Ray's client
    reads it from its environment, once per process)."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "PYTHONPATH": str(REPOSITORY)}  # fmt: skip
    code = "import sys; from tests.kube import ray_pods; print(ray_pods.alive_nodes(sys.argv[1]))"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, gcs, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the GCS at {gcs} does not answer")
    return int(out.decode().split()[-1])


@dataclass
class RayPodSet:
    """The running pods of one RayCluster."""

    namespace: str
    cluster: str
    pods: list[RayPod]
    gcs: str
    podman_env: dict[str, str]
    workdir: Path
    started_at: float = 0.0
    ready_after: float | None = None  # seconds from the first `podman run` to ready
    ready: bool = field(default=False)
    submitter: asyncio.subprocess.Process | None = None
    submitter_name: str | None = None  # its container's name
    # Every submitter started here (several on a shared cluster, one RayJob each).
    submitters: list[tuple[str, asyncio.subprocess.Process]] = field(default_factory=list)
    auth_token: str | None = None  # the cluster's token (authOptions.mode: token)

    @property
    def head(self) -> RayPod:
        return self.pods[0]

    def container(self, pod: RayPod) -> str:
        return f"{self.namespace}-{pod.name}"

    async def start(self, run_args: Callable[[RayPod], Awaitable[list[str]]]) -> None:
        """Start every pod; the arguments of all are made first, so a refused pod (PodRefused
        from `run_args`) starts none."""
        args = [await run_args(pod) for pod in self.pods]
        self.started_at = asyncio.get_running_loop().time()
        for pod, pod_args in zip(self.pods, args, strict=True):
            pod.log = self.workdir / f"{pod.name}.log"
            with open(pod.log, "wb") as log:
                pod.process = await asyncio.create_subprocess_exec(
                    "podman", "run", *pod_args, stdout=log, stderr=asyncio.subprocess.STDOUT,
                    env=self.podman_env, start_new_session=True,
                )  # fmt: skip

    def failure(self) -> str | None:
        """The first pod whose container exited, with its log's tail."""
        return next((why for pod in self.pods if (why := pod.exited())), None)

    async def check_ready(self) -> bool:
        """Whether every pod's Ray node has joined (remembered once true)."""
        if not self.ready:
            try:
                if self.auth_token:
                    alive = await alive_nodes_with_token(self.gcs, self.auth_token)
                else:
                    alive = await asyncio.to_thread(alive_nodes, self.gcs)
            except Exception:  # the head's GCS is not up yet
                return False
            if alive >= len(self.pods):
                self.ready = True
                self.ready_after = asyncio.get_running_loop().time() - self.started_at
        return self.ready

    @property
    def dashboard(self) -> str:
        """The head's dashboard (Ray's job API) at the head's address, as its service: where
        KubeRay's operator and a K8sJobMode submitter address it."""
        return f"http://{self.head.ip}:{self.head.dashboard_port}"

    @property
    def local_dashboard(self) -> str:
        """The dashboard as a container of the head pod addresses it (SidecarMode): the pod's
        loopback, which is where it listens here when bound to 127.0.0.1."""
        return f"http://{self.head.dashboard_host or self.head.ip}:{self.head.dashboard_port}"

    async def start_submitter(
        self, name: str, args: list[str], log: Path
    ) -> asyncio.subprocess.Process:
        """Start the submitter container `name` beside the head (`podman run` arguments)."""
        self.submitter_name = name
        with open(log, "wb") as out:
            self.submitter = await asyncio.create_subprocess_exec(
                "podman", "run", *args, stdout=out, stderr=asyncio.subprocess.STDOUT,
                env=self.podman_env, start_new_session=True,
            )  # fmt: skip
        self.submitters.append((name, self.submitter))
        return self.submitter

    async def stop(self) -> None:
        """Delete the pods: SIGTERM to each container, SIGKILL 10 s later (a kubelet's grace),
        then the `podman run` processes end."""
        names = [self.container(pod) for pod in self.pods]
        names += [name for name, _ in self.submitters]
        remove = await asyncio.create_subprocess_exec(
            # --ignore: without it podman skips the rest after a container already gone
            "podman", "rm", "--force", "--ignore", "--time=10", *names,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env=self.podman_env,
        )  # fmt: skip
        await remove.wait()
        for process in [pod.process for pod in self.pods] + [p for _, p in self.submitters]:
            if process is not None and process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 10)
