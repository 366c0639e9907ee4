"""JSON merge patches (RFC 7386) of status maps: what every status writer sends.

A merge patch merges maps key by key, so a key the new value no longer has must be
sent as null to be removed (e.g. `backendRef.name` after a trial moved from a RayJob
to a SLURM job, or `backends.kubernetes` after the last trial left Kubernetes).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


def merge_value(old: Any, new: Any) -> Any:
    """The merge patch of one value turning `old` into `new` (removed keys as null)."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    gone = {key: None for key in old if key not in new}
    return {**gone, **{key: merge_value(old.get(key), value) for key, value in new.items()}}


def merged(old: Any, patch: Any) -> Any:
    """`old` with the merge patch `patch` of one value applied (RFC 7386)."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(old) if isinstance(old, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out


def map_patch(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], fields: Collection[str] | None = None
) -> dict[str, Any]:
    """The top-level keys of `old` that differ in `new`, as a merge patch ({} if equal).

    With `fields`, only those keys are compared and written (the writer owns them).
    """
    old = old or {}
    owned = set(fields) if fields is not None else set(old) | set(new)
    return {
        key: merge_value(old.get(key), new.get(key))
        for key in owned
        if old.get(key) != new.get(key)
    }
