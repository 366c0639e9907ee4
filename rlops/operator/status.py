"""The status patch: only the top-level status fields that changed, or nothing.

Every status write of the operator (reconciles and progress) goes through
`status_patch`, so an unchanged status is never written, and two writers that
own different fields (the reconciler everything but progress and result, the
progress endpoint those two) never overwrite each other's newer values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from rlops.api.mergepatch import merge_value, merged

__all__ = ["PROGRESS_FIELDS", "applied", "merge_value", "merged", "reconciled_fields",
           "status_patch"]  # fmt: skip


def status_patch(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], fields: Collection[str] | None = None
) -> dict[str, Any] | None:
    """A JSON merge patch (RFC 7386) of `status` turning `old` into `new`; None if equal.

    With `fields`, only those top-level fields are compared and written: the writer
    owns them, and whatever else is in `old` (perhaps newer than `new`) is left alone.
    """
    old = old or {}
    owned = set(fields) if fields is not None else set(old) | set(new)
    changed: dict[str, Any] = {
        key: merge_value(old.get(key), new.get(key))
        for key in owned
        if old.get(key) != new.get(key)
    }
    return {"status": changed} if changed else None


def applied(old: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> dict[str, Any]:
    """`old` with a status patch of `status_patch` applied."""
    status: dict[str, Any] = merged(old or {}, patch["status"])
    return status


PROGRESS_FIELDS = ("progress", "result")


def reconciled_fields(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> set[str]:
    """The fields the reconciler owns: every field but progress and result."""
    return (set(new) | set(old or {})) - set(PROGRESS_FIELDS)
