"""A run told its pause point (`rlops.dev/pause-at`), for drivers that learn of its end
afterwards (the operator: from the RayJob's end and the result the runtime posted).

Such a run checkpoints after that iteration and exits 75 with stop reason `paused`: its
backend reports a failure (a Ray job with a non-zero exit), but it ended at a checkpoint,
which the lifecycle reads as `ended_phase` does for the runner's records: Paused while a
pause holds it. Here the pause point itself holds it, until the annotation moves past the
iteration reached (a sweep's promotion) or goes. A pause asked for once the run has
reported its pause point is not carried out by ending the run: it ends by itself, and a
signal would cross its exit (the runner's fleet holds back its signal the same way).
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
    return at if iteration >= at else None


def pause_point_reason(at: int) -> str:
    """Why an experiment that ended at its pause point is Paused (its message says
    `paused: ` before it)."""
    return f"ended at its pause point, iteration {at}"


def at_pause_point(
    requests: Requests,
    work: Observation | None,
    annotations: Mapping[str, str],
    stop_reason: object,
    iteration: object,
) -> tuple[Requests, Observation | None]:
    """`requests` and `work` as the lifecycle should read them, given the run's pause
    point, the stop reason of the result it posted and the last iteration it reported:

    - ended there: the pause point holds it like a pause, and its end, whatever its backend
      calls it, is an end at a checkpoint (Paused, by `ended_phase`);
    - still running past it: a pause waits for the run to end by itself.
    """
    at = reached_pause_point(annotations, stop_reason, iteration)
    if at is not None:
        held = requests if requests.pause is not None else replace(
            requests, pause=pause_point_reason(at)
        )  # fmt: skip
        if work is not None and work.terminal:
            checkpointed = Observation(Phase.PAUSED, "ended at a checkpoint", terminal=True)
            work = replace(work, phase=ended_phase(checkpointed, held), reason="PausePoint",
                           message=pause_point_reason(at))  # fmt: skip
        return held, work
    due = pause_at(annotations)
    reported = isinstance(iteration, int) and due is not None and iteration >= due
    if reported and requests.pause is not None and work is not None and not work.terminal:
        return replace(requests, pause=None), work
    return requests, work
