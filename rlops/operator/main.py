"""Running the operator: kopf, the progress endpoint and the metrics server together.

Two replicas never act on one object at once: kopf peering pauses every operator
that sees a live peer of higher priority (equal priorities pause each other, so
each replica picks a random priority unless given one). The peering object is
created here when missing. Every action is also idempotent (deterministic names,
absolute annotation values, status writes of what changed), so the short window
in which a starting replica has not yet seen its peer does no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import kopf
import kubernetes.client
import kubernetes.config
from aiohttp import web
from kubernetes.client.exceptions import ApiException

from rlops.api.settings import Settings
from rlops.metrics import RlopsMetrics, start_http_server
from rlops.operator.controller import Controller
from rlops.operator.handlers import register
from rlops.operator.kube import Kube
from rlops.operator.progress import ProgressHub, progress_app
from rlops.operator.signing import with_signing_key
from rlops.operator.toggles import install as wake_on_change

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scope:
    """Which objects this operator serves and with whom it peers."""

    namespaces: Sequence[str] = ()
    clusterwide: bool = False
    peering: str | None = "rlops"  # None: standalone, no peering at all
    priority: int | None = None  # None: random


def api_client() -> kubernetes.client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig."""
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        return kubernetes.client.ApiClient()
    except kubernetes.config.ConfigException:
        client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config()  # type: ignore[no-untyped-call]
        return client


def ensure_peering(api: kubernetes.client.ApiClient, scope: Scope) -> None:
    """Create the kopf peering object(s) the replicas meet at, if missing."""
    assert scope.peering is not None
    custom = kubernetes.client.CustomObjectsApi(api)
    meta: dict[str, str] = {"name": scope.peering}
    try:
        if scope.clusterwide:
            body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": meta}
            custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)
        for namespace in scope.namespaces:
            body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": meta}
            with contextlib.suppress(ApiException):
                custom.create_namespaced_custom_object(
                    "kopf.dev", "v1", namespace, "kopfpeerings", body
                )
    except ApiException as exc:
        if exc.status != 409:
            log.warning("cannot create the peering object %s: %s", scope.peering, exc.reason)


async def run_operator(
    settings: Settings,
    scope: Scope,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run until `stop_flag` is set (or forever)."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=32, thread_name_prefix="rlops-api"))
    api = api_client()
    settings = await asyncio.to_thread(with_signing_key, api, settings)
    metrics = RlopsMetrics(finished_series_seconds=settings.finished_series_seconds)
    controller = Controller(settings, Kube(api), metrics)
    hub = ProgressHub(controller.write_progress, settings.status_flush_seconds)
    registry = kopf.OperatorRegistry()
    register(registry, controller, hub)
    wake_on_change()  # a start-up with many objects: no quadratic wake-ups in kopf

    ready = ready_flag or asyncio.Event()
    metrics_server = start_http_server(metrics, settings.host, settings.metrics_port, ready.is_set)
    app = progress_app(hub, settings.secret.get_secret_value(), controller.uid_of)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.progress_port).start()
    if scope.peering is not None:
        await asyncio.to_thread(ensure_peering, api, scope)
    priority = scope.priority if scope.priority is not None else random.randint(1, 2**30)
    log.info("rlops operator starting (peering %s, priority %d)", scope.peering, priority)
    try:
        await kopf.operator(
            registry=registry,
            namespaces=list(scope.namespaces),
            clusterwide=scope.clusterwide,
            standalone=scope.peering is None,
            peering_name=scope.peering,
            priority=priority,
            stop_flag=stop_flag,
            ready_flag=ready,
        )
    finally:
        with contextlib.suppress(Exception):  # held status changes: written, not lost
            await asyncio.wait_for(controller.writer.flush(), 10)
        await runner.cleanup()
        metrics_server.stop()
        api.close()  # type: ignore[no-untyped-call]
