"""The Kubernetes side of the bridge, behind a small protocol: list, claim, write status.

`KubeExperimentStore` implements it with the official client. Claims and finalizer
changes are merge patches that carry the object's resourceVersion, so the API server
rejects them with 409 when another writer got there first.
"""

from __future__ import annotations

from typing import Any, Protocol

from rlops.api.base import GROUP, VERSION

PLURAL = "rlexperiments"


class Conflict(Exception):
    """The object changed since it was read (HTTP 409) or is gone (404)."""


class ExperimentStore(Protocol):
    def list(self, namespace: str) -> list[dict[str, Any]]:
        """Every RLExperiment of the namespace, as stored."""
        ...

    def patch_metadata(
        self, namespace: str, name: str, metadata: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        """Merge `metadata` if the object is still at `resource_version`; else Conflict."""
        ...

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> str | None:
        """Merge-patch the status subresource; the object's new resourceVersion."""
        ...


class KubeExperimentStore:
    """ExperimentStore over `kubernetes.client.CustomObjectsApi`."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def list(self, namespace: str) -> list[dict[str, Any]]:
        body = self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        items: list[dict[str, Any]] = body.get("items", [])
        return items

    def patch_metadata(
        self, namespace: str, name: str, metadata: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        patch = {"metadata": {**metadata, "resourceVersion": resource_version}}
        try:
            body: dict[str, Any] = self.api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, patch
            )
        except Exception as exc:
            if getattr(exc, "status", None) in (404, 409):
                raise Conflict(f"{namespace}/{name}: {exc}") from exc
            raise
        return body

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> str | None:
        try:
            body = self.api.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                raise Conflict(f"{namespace}/{name} is gone") from exc
            raise
        version = ((body or {}).get("metadata") or {}).get("resourceVersion")
        return str(version) if version else None
