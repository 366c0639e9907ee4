"""Annotations through which a Sweep (or a person) steers one RLExperiment on any backend.

- `rlops.dev/attempt: N` asks for attempt N (an absolute number, so asking twice is asking
  once); the backend's driver ends a still-running earlier attempt and starts attempt N
  when N is above `status.attempts`.
- `rlops.dev/stop: <reason>` stops the experiment for good: phase Stopped, message
  `stopped: <reason>`.
- `rlops.dev/pause: <reason>` pauses it: the run is ended as a stop ends it (SIGTERM, a
  checkpoint), but the phase is Paused, message `paused: <reason>`, and it is not finished.
  Removing the annotation resumes it: a new run of the same attempt, from its checkpoint.
  A stop wins over a pause; a Paused experiment that is stopped becomes Stopped at once.
- `rlops.dev/promotions: N` counts the resumes a sweep granted (an absolute number, written
  with the removal of `rlops.dev/pause`): ASHA's promotion variant reads from it how many
  rungs the trial was promoted past. Drivers only keep it.
- `rlops.dev/pause-at: N` tells the run where to end by itself: after iteration N it
  checkpoints and ends as paused (the runtime's RLOPS_PAUSE_AT_ITERATION). A sweep under
  ASHA's promotion variant writes its trial's rung there, and moves it to the next rung (or
  removes it) with the resume that promotes the trial. A run that ended there stays Paused
  until the annotation moves past it, as if `rlops.dev/pause` held it.
- `rlops.dev/exploits: [...]` (JSON) lists a PBT trial's exploits, oldest first, each
  `{iteration, source, parameters}`; written by the sweep with the resume that carries one
  out (and the trial's new `spec.config` and `spec.checkpoint.exploit`).
"""

from __future__ import annotations

from collections.abc import Mapping

ANNOTATION_ATTEMPT = "rlops.dev/attempt"
ANNOTATION_STOP = "rlops.dev/stop"
ANNOTATION_PAUSE = "rlops.dev/pause"
ANNOTATION_PROMOTIONS = "rlops.dev/promotions"
ANNOTATION_PAUSE_AT = "rlops.dev/pause-at"
ANNOTATION_HISTORY = "rlops.dev/history"  # A sweep trial's objective: `iteration:value,...`.
HISTORY_POINTS = 200  # Points of it kept by default (older ones thinned).
ANNOTATION_PARAMETERS = "rlops.dev/parameters"  # A sweep's trial: its parameters, as JSON.
ANNOTATION_OBJECTIVE = "rlops.dev/objective"  # A sweep's trial: the metric it is ranked by.
ANNOTATION_EXPLOITS = "rlops.dev/exploits"  # A PBT trial's exploits, as JSON.


def requested_attempt(annotations: Mapping[str, str]) -> int:
    """The attempt `rlops.dev/attempt` asks for (1 when absent or not a number)."""
    value = annotations.get(ANNOTATION_ATTEMPT, "1")
    return max(1, int(value)) if value.isdigit() else 1


def promotions(annotations: Mapping[str, str]) -> int:
    """The resumes `rlops.dev/promotions` records (0 when absent or not a number)."""
    value = annotations.get(ANNOTATION_PROMOTIONS, "0")
    return int(value) if value.isdigit() else 0


def pause_at(annotations: Mapping[str, str]) -> int | None:
    """The iteration `rlops.dev/pause-at` asks the run to end at (None when absent, not a
    positive number)."""
    value = annotations.get(ANNOTATION_PAUSE_AT, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def pause_message(reason: str) -> str:
    """The status message of an experiment paused through `rlops.dev/pause`."""
    return f"paused: {reason}"


def stop_message(reason: str) -> str:
    """The status message of an experiment stopped through `rlops.dev/stop`."""
    return f"stopped: {reason}"
