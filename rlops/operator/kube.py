"""The Kubernetes calls the operator makes, over the official (synchronous) client.

Every call is idempotent from the operator's point of view: creating what exists
(409) or deleting what is gone (404) is success. The controller runs these in
worker threads so the event loop never blocks on the network.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, cast

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from rlops.api.kinds import Kind

__all__ = ["RLEXPERIMENTS", "SWEEPS", "Kind", "Kube"]

RLEXPERIMENTS = Kind("rlops.dev", "v1alpha1", "rlexperiments")
SWEEPS = Kind("rlops.dev", "v1alpha1", "sweeps")


def _read(response: Any) -> None:
    """Consume a response whose body is not wanted: the client's own deserialization into
    its models (a V1Secret, a CoreV1Event) is most of a create's CPU in the operator."""
    response.read()
    response.release_conn()


class Kube:
    """Create, read, patch and delete custom objects; post events."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> bool:
        """Create `body`; False if an object of that name exists already."""
        try:
            self.custom.create_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, body
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def apply_secret(self, namespace: str, body: dict[str, Any]) -> None:
        """Create the Secret `body`, or set its data if one of that name has the same owner.

        A Secret of that name owned by anything else (someone's own) is never changed: the
        JSON patch tests the owner's uid first, and the API server refuses it (400/422).
        """
        try:
            _read(self.core.create_namespaced_secret(namespace, body, _preload_content=False))  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:
                raise
            owner = body["metadata"]["ownerReferences"][0]["uid"]
            patch = [
                {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": owner},
                {"op": "replace", "path": "/data", "value": body["data"]},
            ]
            self.core.patch_namespaced_secret(body["metadata"]["name"], namespace, patch)

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body = self.custom.get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], body)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name,
                propagation_policy="Background",
            )  # fmt: skip
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch of the object (not its status); a missing object is fine."""
        try:
            self.custom.patch_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name, patch
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(
        self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]
    ) -> str | None:
        """A JSON merge patch of the status subresource: the new resourceVersion (None: gone)."""
        try:
            body = self.custom.patch_namespaced_custom_object_status(
                kind.group, kind.version, namespace, kind.plural, name, patch
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return None
        version = cast(dict[str, Any], body).get("metadata", {}).get("resourceVersion")
        return str(version) if version is not None else None

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about `involved` (a failure to post one is not an error)."""
        meta = involved.get("metadata") or {}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {
                "generateName": f"{meta.get('name')}.",
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "rlops-operator"},
            "reportingComponent": "rlops-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiException):
            namespace = str(meta.get("namespace"))
            _read(self.core.create_namespaced_event(namespace, body, _preload_content=False))  # type: ignore[arg-type]
