"""Object-count ResourceQuotas (`count/<resource>.<group>`) on the test bed.

A ResourceQuota in a namespace whose `spec.hard` has `count/rayjobs.ray.io: "0"` refuses the
next RayJob there with 403 Forbidden and the API server's words ("exceeded quota: ...").
Only object counts are emulated (no compute quotas): enough for a refusal the tests can cause.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]


def refusal(group_resource: str, quotas: Iterable[Obj], used: int) -> str | None:
    """Why one more object of `group_resource` (with `used` there now) exceeds a quota."""
    key = f"count/{group_resource}"
    for quota in quotas:
        hard = (quota.get("spec") or {}).get("hard") or {}
        if key in hard and used + 1 > int(hard[key]):
            name = quota["metadata"]["name"]
            return (f"exceeded quota: {name}, requested: {key}=1, used: {key}={used}, "
                    f"limited: {key}={hard[key]}")  # fmt: skip
    return None
