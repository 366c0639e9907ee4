"""Errors that stay with the object they concern.

- An attempt's objects (the token Secret, then the RayJob) that the API server refuses for
  good (400 Bad Request, 403 Forbidden, 422 Invalid: retrying sends the same body and gets
  the same answer; `KubeRayBackend.submit` raises `Refused`) make the experiment Failed
  with the server's reason, once (`failed`); other errors (conflicts, timeouts, 5xx) are
  retried by the caller.
- An RLExperiment that cannot be read (a hand-edited status or spec the model refuses)
  becomes Failed with what is wrong, instead of being retried every few seconds.
- A Sweep's child whose rlops.dev annotations or status cannot be read is marked Failed
  by its sweep; the sweep's plan already counts it as a failed trial and goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rlops.api import Phase, RLExperimentStatus
from rlops.lifecycle.conditions import experiment_conditions, stamp_transitions

# The status fields a Failed verdict writes (progress, result and attempts are left as they are).
FAILED_FIELDS = ("phase", "message", "completedAt", "observedGeneration", "conditions")


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failed(
    status: RLExperimentStatus | None, message: str, generation: int | None, now: datetime
) -> RLExperimentStatus:
    """`status` (or a new one) as Failed with `message`, and the conditions that go with it."""
    old = status.conditions if status is not None else []
    conditions = experiment_conditions(Phase.FAILED, message, generation)
    return (status or RLExperimentStatus()).model_copy(
        update={
            "phase": Phase.FAILED,
            "message": message,
            "completed_at": timestamp(now),
            "observed_generation": generation,
            "conditions": stamp_transitions(conditions, old, timestamp(now)),
        }
    )


def unreadable(body: Mapping[str, Any], exc: ValidationError, now: datetime) -> dict[str, Any]:
    """The Failed status of an RLExperiment the model cannot read, naming what is wrong."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
    )
    generation = (body.get("metadata") or {}).get("generation")
    message = f"cannot read this RLExperiment: {problems}"[:1024]
    return failed(None, message, generation, now).dump()


def corrupt_children(
    children: Sequence[Mapping[str, Any]], read: Callable[[Mapping[str, Any]], Exception | None]
) -> list[tuple[str, str]]:
    """(name, message) of each child that `read` cannot read and that is not Failed yet."""
    out = []
    for child in children:
        error = read(child)
        status = child.get("status") or {}
        if error is not None and status.get("phase") != Phase.FAILED.value:
            name = str((child.get("metadata") or {}).get("name"))
            out.append((name, f"its sweep cannot read this trial: {error}"[:1024]))
    return out
