"""The operator's part in a Sweep's shared RayCluster (rlops/operator/sharedcluster.py): the
cluster is created once while the sweep runs (the sweep's placement merged over its
template's, so the Kueue queue reaches it), deleted once when the sweep is done, and a sweep
without `sharedCluster` costs no request at all."""

from __future__ import annotations

from typing import Any

from rlops.api import Sweep
from rlops.api.kinds import Kind
from rlops.operator.sharedcluster import SharedClusters
from tests.backends.kuberay_fixtures import settings
from tests.builders import sweep


class Api:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.bodies: list[dict[str, Any]] = []

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(("create", kind.plural, body["metadata"]["name"]))
        self.bodies.append(body)
        return True

    def apply_secret(self, namespace: str, body: dict[str, Any]) -> None:
        raise AssertionError("no Secret for a shared cluster")

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.calls.append(("delete", kind.plural, name))


def a_sweep(shared: bool = True) -> Sweep:
    body = (
        sweep("grid", namespace="team-a")
        .template("placement", {"backend": "kubernetes", "kubernetes": {"queue": "research"}})
        .set("spec.parallelism", 2)
        .set("spec.placement", {"kubernetes": {"sharedCluster": shared}})
        .obj()
    )
    body["metadata"]["uid"] = "u-1"
    return Sweep.model_validate(body)


def drive(clusters: SharedClusters, s: Sweep, done: bool) -> None:
    """As the controller does: a thread (a request) only when `wanted`."""
    if clusters.wanted(s, done):
        clusters.sync(s, done)


def test_the_cluster_lives_while_the_sweep_runs() -> None:
    api = Api()
    clusters = SharedClusters(api, settings())
    s = a_sweep()
    for _ in range(3):  # every plan of a running sweep
        drive(clusters, s, done=False)
    assert api.calls == [("create", "rayclusters", "grid-ray")]
    body = api.bodies[0]
    assert body["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "research"
    assert body["spec"]["suspend"] is True
    for _ in range(3):  # the plans after the sweep ended
        drive(clusters, s, done=True)
    assert api.calls[1:] == [("delete", "rayclusters", "grid-ray")]


def test_a_restarted_operator_asks_once_more() -> None:
    api = Api()
    s = a_sweep()
    SharedClusters(api, settings()).sync(s, done=False)
    SharedClusters(api, settings()).sync(s, done=False)  # creating what exists is success
    SharedClusters(api, settings()).sync(s, done=True)
    assert [c[0] for c in api.calls] == ["create", "create", "delete"]


def test_a_sweep_without_the_setting_costs_nothing() -> None:
    api = Api()
    clusters = SharedClusters(api, settings())
    for done in (False, True):
        assert not clusters.wanted(a_sweep(shared=False), done)
        clusters.sync(a_sweep(shared=False), done)
    assert api.calls == []
