"""The KubeRay stand-in's RayClusters of their own, and RayJobs on them (`clusterSelector`).

A RayCluster that no RayJob owns (a Sweep's shared cluster) is reconciled here as KubeRay's
RayCluster controller (v1.7) does: while `spec.suspend` is true (Kueue has not admitted it)
it has no pods and `state: suspended`; otherwise its Ray pods run (podman containers in
container mode, tests/kube/ray_pods.py) and it becomes `ready` once every Ray node joined;
deleting it deletes its pods. Its token Secret is made as for a RayJob's cluster.

A RayJob with `clusterSelector` (`ray.io/cluster: <name>`) runs on that cluster, as
KubeRay's RayJob controller does: its `rayClusterName` is the selected name, it waits in
Initializing while the cluster is missing or not ready, its job is submitted to that
cluster's head (the submitter gets the cluster's token), it never creates, suspends or
deletes the cluster, and deleting the RayJob stops only its own Ray job. KubeRay's
validation is kept too: `suspend`, `SidecarMode` and a `backoffLimit` above 0 are refused
(`ValidationFailed`), as is a selector without a cluster name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from tests.kube.pod_containers import PodRefused

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
RAYCLUSTERS = "/apis/ray.io/v1/rayclusters"
SELECTOR_KEY = "ray.io/cluster"


async def list_and_watch(session: Any, path: str, on_object: Callable[[Obj], None]) -> None:
    """List `path`, then watch it, calling `on_object` with each object listed or changed;
    when the API server restarts or goes away, list and watch again."""
    while True:
        try:
            async with session.get(path) as response:
                listing = await response.json()
            for item in listing["items"]:
                on_object(item)
            version = listing["metadata"]["resourceVersion"]
            params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "300"}
            async with session.get(path, params=params, timeout=None) as response:
                async for line in response.content:
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        break
                    on_object(event["object"])
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("kuberay stand-in: the watch of %s failed", path)
            await asyncio.sleep(0.5)


def selected_cluster(spec: Obj) -> str | None:
    """The cluster a RayJob's `clusterSelector` names (None: it brings its own)."""
    selector = spec.get("clusterSelector") or {}
    return str(selector.get(SELECTOR_KEY) or "") if selector else None


def selector_problem(spec: Obj) -> str | None:
    """KubeRay v1.7's `validateRayJobSpec` on a clusterSelector RayJob."""
    name = selected_cluster(spec)
    if name is None:
        return None
    if not name:
        return "cluster name in ClusterSelector should not be empty"
    if spec.get("suspend"):
        return (
            "The RayJob spec is invalid: the ClusterSelector mode doesn't support the "
            "suspend operation"
        )
    if spec.get("submissionMode") == "SidecarMode":
        return "ClusterSelector is not supported in SidecarMode"
    if int(spec.get("backoffLimit") or 0) > 0:
        return "The RayJob spec is invalid: BackoffLimit is incompatible with ClusterSelector mode"
    return None


def pods_key(namespace: str, cluster: str) -> tuple[str, str]:
    """Where the stand-in keeps the pods of a RayCluster of its own (apart from RayJobs')."""
    return namespace, f"raycluster/{cluster}"


def standalone(cluster: Obj) -> bool:
    owners = (cluster.get("metadata") or {}).get("ownerReferences") or []
    return not any(o.get("kind") == "RayJob" for o in owners)


def ready_status(cluster: Obj, head_ip: str, stamp: str) -> Obj:
    name = cluster["metadata"]["name"]
    workers = sum(int(g.get("replicas", 0)) for g in cluster["spec"].get("workerGroupSpecs") or [])
    return {
        "state": "ready",
        "desiredWorkerReplicas": workers,
        "readyWorkerReplicas": workers,
        "availableWorkerReplicas": workers,
        "head": {"podIP": head_ip, "serviceIP": head_ip, "serviceName": f"{name}-head-svc"},
        "lastUpdateTime": stamp,
    }


class StandaloneClusters:
    """The stand-in's part for RayClusters of their own (mixed into `KubeRayStandIn`, whose
    HTTP client, token Secret, pods and refusals it uses)."""

    _cluster_workers: dict[tuple[str, str], asyncio.Task[None]]
    _cluster_wakes: dict[tuple[str, str], asyncio.Event]

    async def _watch_clusters(self: Any) -> None:
        self._cluster_workers, self._cluster_wakes = {}, {}
        await list_and_watch(self._session, RAYCLUSTERS, self._wake_cluster)

    def _wake_cluster(self: Any, cluster: Obj) -> None:
        if not standalone(cluster):
            return  # a RayJob's cluster: its RayJob's reconcile runs it
        meta = cluster["metadata"]
        key = (meta["namespace"], meta["name"])
        worker = self._cluster_workers.get(key)
        if worker is None or worker.done():
            self._cluster_wakes[key] = asyncio.Event()
            task = asyncio.get_running_loop().create_task(self._cluster_worker(key))
            self._cluster_workers[key] = task
        self._cluster_wakes[key].set()

    async def _stop_cluster_workers(self: Any) -> None:
        tasks = list(getattr(self, "_cluster_workers", {}).values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _cluster_worker(self: Any, key: tuple[str, str]) -> None:
        wake = self._cluster_wakes[key]
        while True:
            wake.clear()
            try:
                path = f"/apis/ray.io/v1/namespaces/{key[0]}/rayclusters/{key[1]}"
                cluster = await self._get(path)
                if cluster is None or cluster["metadata"].get("deletionTimestamp"):
                    await self._stop_pods(pods_key(*key))
                    return
                delay = await self._reconcile_cluster(path, cluster)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("kuberay stand-in: reconciling RayCluster %s/%s failed", *key)
                delay = self.requeue_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)

    async def _reconcile_cluster(self: Any, path: str, cluster: Obj) -> float:
        from tests.kube.kuberay_standin import _stamp

        namespace, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        state = (cluster.get("status") or {}).get("state")
        if (cluster.get("spec") or {}).get("suspend"):
            await self._stop_pods(pods_key(namespace, name))
            if state != "suspended":
                cluster["status"] = {"state": "suspended", "lastUpdateTime": _stamp()}
                await self._send("PUT", f"{path}/status", cluster)
            return 1.0
        head_ip = "127.0.0.1"
        pods = self.pods(namespace)
        if pods is not None:
            key = pods_key(namespace, name)
            try:
                token = await self._auth_token(namespace, cluster)
                if not await self._pods_ready(pods, key, cluster, token):
                    return self.requeue_seconds
            except PodRefused as refused:
                self._refusals[key] = str(refused)
                return 1.0
            head_ip = self._pod_sets[key].head.ip
        if state != "ready":
            cluster["status"] = ready_status(cluster, head_ip, _stamp())
            await self._send("PUT", f"{path}/status", cluster)
        return 5.0

    async def _selected(self: Any, namespace: str, spec: Obj) -> Obj | None:
        """The ready cluster a clusterSelector RayJob runs on (None: not there or not ready)."""
        name = selected_cluster(spec)
        cluster = await self._get(f"/apis/ray.io/v1/namespaces/{namespace}/rayclusters/{name}")
        if cluster is None or (cluster.get("status") or {}).get("state") != "ready":
            return None
        return dict(cluster)

    def cluster_pods(self: Any, namespace: str, cluster: str) -> Any:
        """The running Ray pods of a RayCluster of its own (container mode)."""
        return self._pod_sets.get(pods_key(namespace, cluster))
