"""Discovery documents (`/api`, `/apis`, ...) and OpenAPI v3 (`/openapi/v3`) of served kinds.

kubectl needs OpenAPI v3 for two things: to see that the server supports
`fieldValidation` (a query parameter of each PATCH operation, marked with
`x-kubernetes-group-version-kind`), so that it leaves validation to the
server; and for `kubectl explain`, which reads the schema of a kind from
`components.schemas`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.kube.resources import ResourceType

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-rlops-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(versions)]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list(served: dict[str, list[ResourceType]]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for gv in served:
        if "/" in gv:
            group, version = gv.split("/")
            groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {k: v for k, v in api_group(g, vs).items() if k not in ("kind", "apiVersion")}
            for g, vs in sorted(groups.items())
        ],
    }


def api_resource_list(group_version: str, types: list[ResourceType]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            entry for rt in sorted(types, key=lambda t: t.plural) for entry in rt.discovery()
        ],
    }


def _path_key(group_version: str) -> str:
    return f"apis/{group_version}" if "/" in group_version else f"api/{group_version}"


def openapi_root(served: dict[str, list[ResourceType]]) -> dict[str, Any]:
    """`/openapi/v3`: where each group-version's document is."""
    paths = {}
    for gv, types in served.items():
        digest = (
            hashlib.sha256(",".join(sorted(t.plural for t in types)).encode())
            .hexdigest()[:16]
            .upper()
        )
        paths[_path_key(gv)] = {"serverRelativeURL": f"/openapi/v3/{_path_key(gv)}?hash={digest}"}
    return {"paths": paths}


def _schema_name(rt: ResourceType) -> str:
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def openapi_group_version(group_version: str, types: list[ResourceType]) -> bytes:
    """One group-version's OpenAPI v3 document, serialised."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    query = [
        {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
        for name in ("dryRun", "fieldManager", "fieldValidation")
    ]
    for rt in types:
        prefix = f"/{_path_key(group_version)}"
        where = (
            f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
            if rt.namespaced
            else f"{prefix}/{rt.plural}"
        )
        ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
        body = {"content": {"application/json": {"schema": ref}}}
        extension = {"x-kubernetes-group-version-kind": _gvk(rt)}
        paths[where] = {
            "post": {
                "parameters": query,
                "requestBody": body,
                **extension,
                "x-kubernetes-action": "post",
            },
        }
        paths[f"{where}/{{name}}"] = {
            "put": {
                "parameters": query,
                "requestBody": body,
                **extension,
                "x-kubernetes-action": "put",
            },
            "patch": {"parameters": query, **extension, "x-kubernetes-action": "patch"},
        }
        schema = dict(
            rt.open_api_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
        schema["x-kubernetes-group-version-kind"] = [_gvk(rt)]
        schemas[_schema_name(rt)] = schema
    document = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    return json.dumps(document).encode()
