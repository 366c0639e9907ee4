"""A run that ended itself at its pause point (`rlops.dev/pause-at`), for drivers that
learn of it afterwards (the operator: from the RayJob's end and the result the runtime
posted).

Such a run checkpointed and exited 75 with stop reason `paused`: its backend reports a
failure (a Ray job with a non-zero exit), but it ended at a checkpoint, which the lifecycle
reads as `ended_phase` does for the runner's records: Paused while a pause holds it. Here
the pause point itself holds it, until the annotation moves past the iteration reached (a
sweep's promotion) or goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from rlops.api.annotations import pause_at
from rlops.api.experiment import Phase
from rlops.api.runinfo import PAUSED_REASON
from rlops.lifecycle.machine import Requests, ended_phase
from rlops.lifecycle.observation import Observation


def reached_pause_point(
    annotations: Mapping[str, str], stop_reason: object, iteration: object
) -> int | None:
    """The pause point the current run ended at: the runtime's result says `paused`
    (`stop_reason`) at `iteration`, at or past `rlops.dev/pause-at`. None otherwise."""
    at = pause_at(annotations)
    if at is None or stop_reason != PAUSED_REASON or not isinstance(iteration, int):
        return None
    if iteration < at:
        return None
    return at


def pause_point_reason(at: int) -> str:
    """Why an experiment that ended at its pause point is Paused (its message says
    `paused: ` before it)."""
    return f"ended at its pause point, iteration {at}"


def held_at_pause_point(
    requests: Requests, work: Observation | None, at: int | None
) -> tuple[Requests, Observation | None]:
    """`requests` and `work` as the lifecycle should read them when the run ended at
    pause point `at` (None: as they are): the pause point holds it like a pause, and the
    run's end, whatever its backend calls it, is an end at a checkpoint."""
    if at is None:
        return requests, work
    held = (
        requests if requests.pause is not None else replace(requests, pause=pause_point_reason(at))
    )
    if work is not None and work.terminal:
        paused = Observation(Phase.PAUSED, "ended at a checkpoint", terminal=True)
        phase = ended_phase(paused, held)
        message = f"ended at its pause point, iteration {at}"
        work = replace(work, phase=phase, message=message, reason="PausePoint")
    return held, work
