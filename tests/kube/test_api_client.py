"""API semantics the operator relies on, through the official Kubernetes Python client.

Covers: create/get/list with server-set metadata, 409 on a stale
resourceVersion, generation rules, JSON merge patch and JSON patch, the status
subresource's isolation, 422 with field causes from the CRD schema, pruning
and strict field validation, 415 for strategic merge patch on CRs, label and
field selectors, ownerReference cascade, finalizers holding deletion, and the
order of watch events. Runs against the emulator, or a real cluster with
RLOPS_TEST_KUBECONFIG.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import kubernetes.watch
import pytest
from kubernetes.client import ApiException

from tests.builders import experiment, sweep
from tests.kube.fixtures import KubeTestBed
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

GROUP, VERSION = "rlops.dev", "v1alpha1"


class Resources:
    """RLExperiments and Sweeps of one namespace, through CustomObjectsApi."""

    def __init__(self, api: kubernetes.client.CustomObjectsApi, namespace: str) -> None:
        self.api, self.ns = api, namespace

    def create(self, body: dict[str, Any], plural: str = "rlexperiments", **kw: Any) -> Any:
        return self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body, **kw)

    def get(self, name: str, plural: str = "rlexperiments") -> Any:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)

    def list(self, plural: str = "rlexperiments", **kw: Any) -> Any:
        return self.api.list_namespaced_custom_object(GROUP, VERSION, self.ns, plural, **kw)

    def patch(self, name: str, body: Any, plural: str = "rlexperiments", **kw: Any) -> Any:
        return self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, plural, name, body, **kw
        )

    def patch_status(self, name: str, body: Any) -> Any:
        return self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.ns, "rlexperiments", name, body
        )

    def replace(self, name: str, body: Any) -> Any:
        return self.api.replace_namespaced_custom_object(
            GROUP, VERSION, self.ns, "rlexperiments", name, body
        )

    def delete(self, name: str, plural: str = "rlexperiments") -> Any:
        return self.api.delete_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)

    def exists(self, name: str, plural: str = "rlexperiments") -> bool:
        try:
            self.get(name, plural)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True


@pytest.fixture
def api(kube: KubeTestBed) -> Iterator[kubernetes.client.ApiClient]:
    with kube.api_client() as client:
        yield client


@pytest.fixture
def rlx(api: kubernetes.client.ApiClient, kube_namespace: str) -> Resources:
    return Resources(kubernetes.client.CustomObjectsApi(api), kube_namespace)


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_get_list_set_server_fields(rlx: Resources) -> None:
    created = rlx.create(experiment("a").obj())
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert meta["generation"] == 1
    assert meta["namespace"] == rlx.ns
    assert rlx.get("a") == created
    second = rlx.create(experiment("b").obj())
    assert int(second["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    listing = rlx.list()
    assert [i["metadata"]["name"] for i in listing["items"]] == ["a", "b"]
    assert int(listing["metadata"]["resourceVersion"]) >= int(second["metadata"]["resourceVersion"])
    with pytest.raises(ApiException) as exists:
        rlx.create(experiment("a").obj())
    assert exists.value.status == 409 and _status(exists.value)["reason"] == "AlreadyExists"


def test_stale_resource_version_is_a_409_conflict(rlx: Resources) -> None:
    stale = rlx.create(experiment("a").obj())
    rlx.patch("a", {"spec": {"seed": 1}})
    stale["spec"]["seed"] = 2
    with pytest.raises(ApiException) as replaced:
        rlx.replace("a", stale)
    assert replaced.value.status == 409 and _status(replaced.value)["reason"] == "Conflict"
    with pytest.raises(ApiException) as patched:
        rlx.patch("a", {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"]}})
    assert patched.value.status == 409
    fresh = rlx.get("a")
    fresh["spec"]["seed"] = 3
    assert rlx.replace("a", fresh)["spec"]["seed"] == 3


def test_generation_counts_spec_changes_only(rlx: Resources) -> None:
    rlx.create(experiment("a").obj())
    assert rlx.patch("a", {"spec": {"seed": 7}})["metadata"]["generation"] == 2
    assert rlx.patch("a", {"metadata": {"labels": {"x": "y"}}})["metadata"]["generation"] == 2
    assert rlx.patch_status("a", {"status": {"phase": "Running"}})["metadata"]["generation"] == 2
    unchanged = rlx.get("a")
    again = rlx.patch("a", {"spec": {"seed": 7}})
    assert again["metadata"]["resourceVersion"] == unchanged["metadata"]["resourceVersion"]
    assert rlx.patch("a", {"spec": {"seed": 8}})["metadata"]["generation"] == 3


def test_merge_patch_merges_objects_and_null_deletes(rlx: Resources) -> None:
    rlx.create(experiment("a").set("spec.seed", 1).obj())
    patched = rlx.patch("a", {"spec": {"stop": {"iterations": 3}, "seed": None}})
    assert patched["spec"]["stop"] == {"timesteps": 2000, "iterations": 3}
    assert "seed" not in patched["spec"]
    assert patched["spec"]["algorithm"] == "PPO"


def test_json_patch_applies_operations_in_order(rlx: Resources) -> None:
    rlx.create(experiment("a").obj())
    ops = [
        {"op": "test", "path": "/spec/algorithm", "value": "PPO"},
        {"op": "replace", "path": "/spec/algorithm", "value": "APPO"},
        {"op": "add", "path": "/spec/seed", "value": 5},
    ]
    patched = rlx.patch("a", ops, _content_type="application/json-patch+json")
    assert (patched["spec"]["algorithm"], patched["spec"]["seed"]) == ("APPO", 5)


def test_strategic_merge_patch_on_a_custom_resource_is_415(rlx: Resources) -> None:
    rlx.create(experiment("a").obj())
    with pytest.raises(ApiException) as refused:
        rlx.patch(
            "a", {"spec": {"seed": 1}}, _content_type="application/strategic-merge-patch+json"
        )
    assert refused.value.status == 415


def test_status_subresource_is_isolated(rlx: Resources) -> None:
    rlx.create(experiment("a").set("status", {"phase": "Running"}).obj())
    assert "status" not in rlx.get("a")
    main = rlx.patch("a", {"spec": {"seed": 4}, "status": {"phase": "Failed"}})
    assert main["spec"]["seed"] == 4 and "status" not in main
    status = rlx.patch_status("a", {"spec": {"seed": 9}, "status": {"phase": "Running"}})
    assert status["status"]["phase"] == "Running" and status["spec"]["seed"] == 4
    main = rlx.patch("a", {"spec": {"seed": 5}, "status": {"phase": "Failed"}})
    assert main["status"]["phase"] == "Running"


def test_schema_violation_is_422_with_field_causes(rlx: Resources) -> None:
    body = experiment("a").set("spec.resources.envRunners", "x").obj()
    with pytest.raises(ApiException) as invalid:
        rlx.create(body)
    assert invalid.value.status == 422
    status = _status(invalid.value)
    assert status["reason"] == "Invalid"
    causes = {c["field"]: c for c in status["details"]["causes"]}
    assert causes["spec.resources.envRunners"]["reason"] == "FieldValueTypeInvalid"
    assert "must be of type integer" in causes["spec.resources.envRunners"]["message"]
    # A required field (the CRD requires `spec`; within it, `stop` is optional now that a
    # command trainer may end by itself, and the validator requires it for RLlib runs).
    with pytest.raises(ApiException) as missing:
        rlx.create(experiment("c").drop("spec").obj())
    assert missing.value.status == 422
    causes = {c["field"]: c for c in _status(missing.value)["details"]["causes"]}
    assert causes["spec"]["reason"] == "FieldValueRequired"
    with pytest.raises(ApiException) as enum:
        rlx.create(experiment("b").set("spec.placement", {"backend": "moon"}).obj())
    cause = _status(enum.value)["details"]["causes"][0]
    assert cause["field"] == "spec.placement.backend" and "supported values" in cause["message"]


def test_unknown_fields_are_pruned_or_refused_when_strict(rlx: Resources) -> None:
    created = rlx.create(experiment("a").set("spec.bogus", 1).obj())
    assert "bogus" not in created["spec"]
    with pytest.raises(ApiException) as strict:
        rlx.create(experiment("b").set("spec.bogus", 1).obj(), field_validation="Strict")
    assert strict.value.status == 400
    assert 'unknown field "spec.bogus"' in _status(strict.value)["message"]


def test_label_and_field_selectors_filter_lists(rlx: Resources) -> None:
    for name, labels in (("a", {"env": "a"}), ("b", {"env": "b"}), ("c", {})):
        rlx.create(experiment(name).set("metadata.labels", labels).obj())

    def names(**kw: Any) -> list[str]:
        return [i["metadata"]["name"] for i in rlx.list(**kw)["items"]]

    assert names(label_selector="env=a") == ["a"]
    assert names(label_selector="env!=a") == ["b", "c"]
    assert names(label_selector="env in (a,b)") == ["a", "b"]
    assert names(label_selector="env notin (a)") == ["b", "c"]
    assert names(label_selector="env") == ["a", "b"]
    assert names(label_selector="!env") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector=f"metadata.namespace={rlx.ns},metadata.name!=b") == ["a", "c"]


def test_deleting_an_owner_deletes_its_dependents(rlx: Resources) -> None:
    owner = rlx.create(sweep("s").obj(), "sweeps")
    reference = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Sweep",
        "name": "s",
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    rlx.create(experiment("s-0").set("metadata.ownerReferences", [reference]).obj())
    rlx.create(experiment("other").obj())
    rlx.delete("s", "sweeps")
    wait_until(lambda: not rlx.exists("s-0"))
    assert rlx.exists("other")


def test_finalizers_hold_deletion_until_removed(rlx: Resources) -> None:
    rlx.create(experiment("a").set("metadata.finalizers", ["rlops.dev/test"]).obj())
    rlx.delete("a")
    held = rlx.get("a")
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["rlops.dev/test"]
    with pytest.raises(ApiException) as forbidden:
        rlx.patch("a", {"metadata": {"finalizers": ["rlops.dev/test", "rlops.dev/more"]}})
    assert forbidden.value.status == 422
    rlx.patch("a", {"metadata": {"finalizers": None}})
    wait_until(lambda: not rlx.exists("a"))


def test_watch_streams_events_in_order_from_a_resource_version(rlx: Resources) -> None:
    start = rlx.list()["metadata"]["resourceVersion"]
    rlx.create(experiment("a").obj())
    rlx.patch("a", {"spec": {"seed": 1}})
    rlx.create(experiment("b").obj())
    rlx.delete("a")
    seen: list[tuple[str, str, int]] = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        rlx.api.list_namespaced_custom_object,
        GROUP,
        VERSION,
        rlx.ns,
        "rlexperiments",
        resource_version=start,
        timeout_seconds=10,
    ):
        obj = event["object"]
        seen.append(
            (event["type"], obj["metadata"]["name"], int(obj["metadata"]["resourceVersion"]))
        )
        if event["type"] == "DELETED":
            watch.stop()
    assert [(t, n) for t, n, _ in seen] == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]
    versions = [v for _, _, v in seen]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
