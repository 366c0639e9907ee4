"""The status patch: only the top-level status fields that changed, or nothing.

Every status write of the operator (reconciles and progress) goes through
`status_patch`, so an unchanged status is never written and two writers that
own different fields (phase vs. progress) never overwrite each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def status_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch (RFC 7386) of `status` turning `old` into `new`; None if equal."""
    old = old or {}
    changed: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    changed.update({key: None for key in old if key not in new})
    return {"status": changed} if changed else None
