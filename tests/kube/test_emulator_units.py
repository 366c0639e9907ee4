"""The emulator's pure parts: structural-schema conversion, pruning, defaulting and causes;
RFC 7386 merge patch and RFC 6902 JSON patch; label and field selectors; Table cells;
410 for a watch older than the event history.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.kube.patch import PatchError, json_patch, merge_patch
from tests.kube.schema import StructuralSchema, to_jsonschema
from tests.kube.selectors import SelectorError, field_selector, label_selector, page
from tests.kube.store import ApiError, Store
from tests.kube.tables import human_duration, json_path

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 2},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "replicas": {
                    "type": "integer",
                    "default": 1,
                    "minimum": 0,
                    "exclusiveMinimum": True,
                },
                "mode": {"type": "string", "enum": ["a", "b"]},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"size": {"type": "integer", "default": 3}},
                    },
                },
                "tags": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
            },
        }
    },
}


def _admit(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    schema = StructuralSchema(SCHEMA)
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n"}, "spec": spec}
    unknown = schema.prune(obj)
    schema.default(obj)
    causes = {c.field: c.reason for c in schema.validate(obj)}
    return obj, unknown, causes


def test_conversion_handles_kubernetes_dialect() -> None:
    converted = to_jsonschema(SCHEMA)["properties"]["spec"]["properties"]
    assert converted["port"]["type"] == ["integer", "string"]
    assert converted["note"]["type"] == ["string", "null"]
    assert converted["replicas"] == {"type": "integer", "exclusiveMinimum": 0}
    assert converted["tags"]["uniqueItems"] is True


def test_valid_object_is_pruned_and_defaulted() -> None:
    spec = {
        "name": "ok",
        "port": "http",
        "note": None,
        "bogus": 1,
        "labels": {"a": "b"},
        "free": {"anything": {"goes": 1}},
        "items": [{"extra": 1}],
    }
    obj, unknown, causes = _admit(spec)
    assert causes == {}
    assert unknown == ["spec.bogus", "spec.items[0].extra"]
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["items"] == [{"size": 3}]
    assert obj["spec"]["free"] == {"anything": {"goes": 1}}
    assert obj["spec"]["note"] is None


def test_non_nullable_nulls_are_dropped_before_defaulting() -> None:
    obj, _, causes = _admit({"name": "ok", "replicas": None, "mode": None})
    assert obj["spec"]["replicas"] == 1 and "mode" not in obj["spec"] and causes == {}


def test_every_violation_is_a_cause_with_its_field() -> None:
    spec = {"port": 1.5, "replicas": 0, "mode": "c", "labels": {"a": 1}, "tags": ["x", "x"]}
    _, _, causes = _admit(spec)
    assert causes == {
        "spec.name": "FieldValueRequired",
        "spec.port": "FieldValueTypeInvalid",
        "spec.replicas": "FieldValueInvalid",
        "spec.mode": "FieldValueNotSupported",
        "spec.labels.a": "FieldValueTypeInvalid",
        "spec.tags": "FieldValueInvalid",
    }


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"m": None}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {}}
    assert merge_patch({"a": 1}, ["x"]) == ["x"]


def test_json_patch_follows_rfc_6902() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    ops = [
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "add", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/c"},
        {"op": "copy", "from": "/a/b", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e"},
        {"op": "replace", "path": "/a/x~1y", "value": 1},
    ]
    with pytest.raises(PatchError, match="does not exist"):
        json_patch(doc, ops)
    ops[-1] = {"op": "add", "path": "/a/x~1y", "value": 1}
    assert json_patch(doc, ops) == {"a": {"b": [0, 1, 2, 3], "x/y": 1}, "e": [0, 1, 2, 3]}
    assert doc == {"a": {"b": [1, 2]}, "c": 1}
    with pytest.raises(PatchError, match="test operation"):
        json_patch(doc, [{"op": "test", "path": "/c", "value": 2}])


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", [True, True, True]),
        ("env=a", [True, False, False]),
        ("env==a", [True, False, False]),
        ("env!=a", [False, True, True]),
        ("env in (a, b)", [True, True, False]),
        ("env notin (a)", [False, True, True]),
        ("env", [True, True, False]),
        ("!env", [False, False, True]),
        ("env in (a,b),tier=x", [True, False, False]),
    ],
)
def test_label_selector(selector: str, matches: list[bool]) -> None:
    objects = [
        {"metadata": {"labels": {"env": "a", "tier": "x"}}},
        {"metadata": {"labels": {"env": "b"}}},
        {"metadata": {}},
    ]
    assert [label_selector(selector)(o) for o in objects] == matches


def test_selector_errors_name_the_requirement() -> None:
    with pytest.raises(SelectorError, match="a b c"):
        label_selector("a b c")
    with pytest.raises(SelectorError, match=r"metadata\.name"):
        field_selector("metadata.name")


def test_listing_pages_follow_on_from_the_last_object_served() -> None:
    items = [{"metadata": {"namespace": "ns", "name": f"o{i:02d}"}} for i in range(5)]
    first, token = page(items, "2", None)
    assert [o["metadata"]["name"] for o in first] == ["o00", "o01"] and token
    rest = items[:1] + items[2:]  # o01 deleted meanwhile: the next page starts after it
    second, token = page(rest, "2", token)
    assert [o["metadata"]["name"] for o in second] == ["o02", "o03"] and token
    last, token = page(items, "2", token)
    assert [o["metadata"]["name"] for o in last] == ["o04"] and token == ""
    assert page(items, None, None) == (items, "")
    with pytest.raises(SelectorError, match="continue token"):
        page(items, "2", "not-a-token")


def test_field_selector_reads_dotted_fields() -> None:
    obj = {"metadata": {"name": "x", "namespace": "ns"}}
    assert field_selector("metadata.name=x,metadata.namespace!=other")(obj)
    assert not field_selector("metadata.name=y")(obj)


def test_table_cells() -> None:
    obj = {"status": {"progress": {"timesteps": 5}}, "spec": {"xs": [{"n": 1}]}}
    assert json_path(obj, ".status.progress.timesteps") == 5
    assert json_path(obj, "{.spec.xs[0].n}") == 1
    assert json_path(obj, ".status.missing.deeper") is None
    assert [human_duration(s) for s in (5, 119, 150, 3600 * 3 + 60, 86400 * 3)] == [
        "5s",
        "119s",
        "2m30s",
        "3h1m",
        "3d",
    ]


def test_watch_from_a_version_older_than_the_history_is_410() -> None:
    store = Store(history=3)
    namespaces = store.type_of("", "namespaces")
    first = int(store.rv)
    for name in ("a", "b", "c", "d"):
        store.create(namespaces, None, {"metadata": {"name": name}})
    with pytest.raises(ApiError) as gone:
        store.watch(namespaces, None, lambda _: True, str(first))
    assert gone.value.code == 410
    recent = store.watch(namespaces, None, lambda _: True, str(store.rv - 1))
    assert recent.queue.get_nowait().obj["metadata"]["name"] == "d"
