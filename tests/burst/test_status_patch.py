"""The operator's status patch for a Sweep whose trials leave Kubernetes: a map field such as
`backends` loses a key, and the merge patch must delete it (RFC 7386 merges maps key by key)."""

from __future__ import annotations

from typing import Any

from rlops.operator.status import applied, status_patch


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def test_a_backend_no_trial_is_on_any_more_leaves_the_status() -> None:
    old = {"phase": "Running", "backends": {"kubernetes": 2}, "trials": {"total": 2}}
    new = {"phase": "Running", "backends": {"slurm": 2}, "trials": {"total": 2}}
    patch = status_patch(old, new)
    assert patch == {"status": {"backends": {"kubernetes": None, "slurm": 2}}}
    assert merge_patch(old, patch["status"]) == new
    assert applied(old, patch) == new


def test_nested_maps_and_lists() -> None:
    old = {"progress": {"iteration": 3, "percent": 30.0}, "conditions": [{"type": "Ready"}]}
    new = {"progress": {"iteration": 4}, "conditions": []}
    patch = status_patch(old, new)
    assert patch is not None
    assert merge_patch(old, patch["status"]) == new == applied(old, patch)
