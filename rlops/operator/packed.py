"""Index entries kept small: what the operator reads of an object, as compact JSON.

kopf keeps whatever an index function returns for as long as the object exists, so at
20,000 trials the entries are most of the operator's memory. A nested dict costs about
six times its JSON text in Python; an entry is kept as the text (`Packed`) and decoded,
as a fresh dict, each time it is read (tens of microseconds).

kopf also keeps each event's raw body referenced until every object of every watched
kind has been indexed (its workers wait for that before calling any other handler), so
at start-up with 20,000 trials every raw body is held at once. `shed` removes from the
raw body what nothing reads (managedFields, kubectl's last applied configuration, a
RayJob's spec; spec and status once the last index of the kind has read them) as soon
as the index functions have seen it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# Metadata the operator never reads (managedFields alone is often larger than the spec).
UNREAD_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


class Packed:
    """One index entry as compact JSON; `body()` decodes a fresh copy."""

    __slots__ = ("data",)

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.data = json.dumps(body, separators=(",", ":")).encode()

    def body(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.data)
        return decoded

    def __repr__(self) -> str:
        return f"Packed({len(self.data)} bytes)"


def unpacked(value: Any) -> Any:
    """An index value as the controller reads it (plain dicts, as tests bind, pass as is)."""
    return value.body() if isinstance(value, Packed) else value


def unpacked_all(values: Iterable[Any] | None) -> list[Any]:
    return [unpacked(v) for v in values] if values is not None else []


def slim_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k != "managedFields"}
    annotations = out.get("annotations")
    if annotations and UNREAD_ANNOTATION in annotations:
        out["annotations"] = {k: v for k, v in annotations.items() if k != UNREAD_ANNOTATION}
    return out


def shed(body: Any, content: bool = False) -> None:
    """Drop from kopf's raw body what no handler reads: managedFields, the last applied
    configuration and, with `content` (once every index has read it), spec and status.
    kopf's `Body` is a read-only view of the raw dict (`_src`); the dict itself is what
    kopf keeps until the event is done. The event handlers read only names and labels."""
    raw = getattr(body, "_src", None)
    if not isinstance(raw, dict):
        return
    meta = raw.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(UNREAD_ANNOTATION, None)
    if content:
        raw.pop("spec", None)
        raw.pop("status", None)
