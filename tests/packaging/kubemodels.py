"""Validate Kubernetes objects offline with the official Python client's models.

The client's models carry the OpenAPI schema of every built-in kind: deserialising into
them checks types and required fields, and a round trip back to a dict drops every
field the schema does not know, so a typo (`securityContex`) shows up as a lost key.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client import ApiClient

JSON = dict[str, Any]

_CLIENT = ApiClient()

# apiVersion -> prefix of the client's model class names.
_PREFIX = {
    "v1": "V1",
    "apps/v1": "V1",
    "rbac.authorization.k8s.io/v1": "V1",
    "networking.k8s.io/v1": "V1",
    "coordination.k8s.io/v1": "V1",
    "apiextensions.k8s.io/v1": "V1",
    "admissionregistration.k8s.io/v1": "V1",
}


def model_name(obj: JSON) -> str | None:
    """The client's model class for an object, or None for kinds it does not know (CRs)."""
    prefix = _PREFIX.get(obj.get("apiVersion", ""))
    return f"{prefix}{obj['kind']}" if prefix else None


def _lost_fields(original: Any, roundtrip: Any, path: str) -> list[str]:
    if isinstance(original, dict):
        if not isinstance(roundtrip, dict):
            return [f"{path}: expected an object"]
        lost = []
        for key, value in original.items():
            if key not in roundtrip:
                if value not in (None, {}, []):
                    lost.append(f"{path}.{key}")
                continue
            lost += _lost_fields(value, roundtrip[key], f"{path}.{key}")
        return lost
    if isinstance(original, list):
        if not isinstance(roundtrip, list) or len(roundtrip) != len(original):
            return [f"{path}: expected a list of {len(original)}"]
        return [
            err
            for i, (a, b) in enumerate(zip(original, roundtrip, strict=True))
            for err in _lost_fields(a, b, f"{path}[{i}]")
        ]
    return []


def schema_errors(obj: JSON) -> list[str]:
    """Every way `obj` breaks its kind's schema: bad types, missing or unknown fields."""
    name = model_name(obj)
    if name is None:
        return [f"{obj.get('apiVersion')} {obj.get('kind')}: no model to validate against"]
    try:
        model = _CLIENT._ApiClient__deserialize(obj, name)  # type: ignore[attr-defined]
    except (ValueError, TypeError, AttributeError) as exc:
        return [f"{obj['kind']} {obj['metadata'].get('name')}: {exc}"]
    roundtrip = _CLIENT.sanitize_for_serialization(model)
    return [
        f"{obj['kind']} {obj['metadata'].get('name')}: unknown field {field}"
        for field in _lost_fields(obj, roundtrip, "")
    ]
