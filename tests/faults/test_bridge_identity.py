"""Bridge identity against the Kubernetes test bed (the API server emulator; SLURM is the
in-memory fake): two replicas with one --bridge-id racing on one experiment submit exactly
one job (the cluster's Lease lets one poll); the Lease holder takes over a stale claim of
another bridge id (a bridge restarted on another login node); deletion is honoured whoever
holds the claim; a lease held by a live bridge is not taken, an expired one is."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rlops.api.base import GROUP, VERSION
from rlops.backends.slurm import SlurmBackend, SlurmSettings
from rlops.slurm_bridge.bridge import CLAIMED_BY, FINALIZER, SlurmBridge
from rlops.slurm_bridge.lease import KubeLease
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import KubeExperimentStore
from tests.faults.fakes import CLUSTER, FakeSlurm, slurm_experiment
from tests.kube.fixtures import KubeTestBed
from tests.slurm.test_bridge import get_experiment

PLURAL = "rlexperiments"


class Bed:
    def __init__(self, kube: KubeTestBed, namespace: str, tmp_path: Path) -> None:
        import kubernetes.client

        self.namespace = namespace
        self.client = kube.api_client()
        self.api = kubernetes.client.CustomObjectsApi(self.client)
        self.leases = kubernetes.client.CoordinationV1Api(self.client)
        self.slurm = FakeSlurm()
        self.settings = SlurmSettings(run_root=tmp_path / "runs", python="/usr/bin/python3")

    def bridge(self, bridge_id: str, holder: str | None = None, **lease: Any) -> SlurmBridge:
        settings = BridgeSettings(cluster=CLUSTER, namespaces=[self.namespace], bridge_id=bridge_id)
        return SlurmBridge(
            KubeExperimentStore(self.api),
            SlurmBackend(self.slurm, self.settings),
            settings,
            lease=KubeLease(self.leases, self.namespace, CLUSTER, holder or bridge_id, **lease),
        )

    def create(self, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        body = slurm_experiment(name)
        body["metadata"].update(namespace=self.namespace, annotations=annotations or {})
        if annotations:
            body["metadata"]["finalizers"] = [FINALIZER]
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any] | None:
        return get_experiment(self.api, self.namespace, name)


@pytest.fixture
def bed(kube: KubeTestBed, kube_namespace: str, tmp_path: Path) -> Iterator[Bed]:
    b = Bed(kube, kube_namespace, tmp_path)
    yield b
    b.client.close()


def test_two_replicas_with_one_id_submit_one_job(bed: Bed) -> None:
    bed.create("race")
    replicas = [bed.bridge("login1", holder=f"login1:{i}") for i in range(2)]
    barrier = threading.Barrier(2)

    def poll(bridge: SlurmBridge) -> None:
        barrier.wait()
        for _ in range(3):
            bridge.poll()

    threads = [threading.Thread(target=poll, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(bed.slurm.table) == 1, bed.slurm.table
    body = bed.get("race")
    assert body is not None and body["status"]["backendRef"]["jobId"] in bed.slurm.table


def test_the_lease_holder_takes_over_a_stale_claim(bed: Bed) -> None:
    old = bed.bridge("old-login-node")
    bed.create("moved")
    old.poll()
    body = bed.get("moved")
    assert body is not None and body["metadata"]["annotations"][CLAIMED_BY].endswith(
        "/old-login-node"
    )
    job_id = body["status"]["backendRef"]["jobId"]
    # The old node is gone; its lease expires; a bridge with another id starts elsewhere.
    new = bed.bridge("new-login-node", duration_seconds=60)
    new.lease.clock = lambda: datetime.now(UTC) + timedelta(seconds=120)  # type: ignore[union-attr]
    new.poll()
    body = bed.get("moved")
    assert body is not None
    assert body["metadata"]["annotations"][CLAIMED_BY] == f"{CLUSTER}/new-login-node"
    assert body["status"]["backendRef"]["jobId"] == job_id and len(bed.slurm.table) == 1


def test_a_live_lease_is_not_taken(bed: Bed) -> None:
    first, second = bed.bridge("a"), bed.bridge("b")
    assert first.lease is not None and second.lease is not None
    assert first.lease.acquire() and not second.lease.acquire()
    assert first.lease.acquire()  # renewed by its holder


def test_deletion_is_honoured_whoever_holds_the_claim(bed: Bed) -> None:
    other = bed.bridge("someone-else")
    bed.create("doomed")
    other.poll()
    body = bed.get("doomed")
    assert body is not None
    job_id = body["status"]["backendRef"]["jobId"]
    bed.api.delete_namespaced_custom_object(GROUP, VERSION, bed.namespace, PLURAL, "doomed")
    mine = bed.bridge("me", duration_seconds=60)
    mine.lease.clock = lambda: datetime.now(UTC) + timedelta(seconds=120)  # type: ignore[union-attr]
    mine.poll()
    assert bed.get("doomed") is None
    assert job_id in bed.slurm.cancelled


def test_a_released_lease_is_taken_at_once(bed: Bed) -> None:
    first, second = bed.bridge("a"), bed.bridge("b")
    assert first.lease is not None and second.lease is not None
    assert first.lease.acquire() and not second.lease.acquire()
    first.lease.release()  # type: ignore[attr-defined]
    assert second.lease.acquire()


def test_a_role_without_lease_rights_runs_as_the_only_bridge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import kubernetes.client

    class Forbidden:
        def read_namespaced_lease(self, name: str, namespace: str) -> Any:
            raise kubernetes.client.ApiException(status=403, reason="Forbidden")

    lease = KubeLease(Forbidden(), "team", CLUSTER, "old-rbac")
    assert lease.acquire() and lease.acquire()
    assert sum("no rights on the Lease" in r.getMessage() for r in caplog.records) == 1
