"""Annotations through which a Sweep (or a person) steers one RLExperiment on any backend.

- `rlops.dev/attempt: N` asks for attempt N (an absolute number, so asking twice is asking
  once); the backend's driver ends a still-running earlier attempt and starts attempt N
  when N is above `status.attempts`.
- `rlops.dev/stop: <reason>` stops the experiment for good: phase Stopped, message
  `stopped: <reason>`.
"""

from __future__ import annotations

from collections.abc import Mapping

ANNOTATION_ATTEMPT = "rlops.dev/attempt"
ANNOTATION_STOP = "rlops.dev/stop"


def requested_attempt(annotations: Mapping[str, str]) -> int:
    """The attempt `rlops.dev/attempt` asks for (1 when absent or not a number)."""
    value = annotations.get(ANNOTATION_ATTEMPT, "1")
    return max(1, int(value)) if value.isdigit() else 1


def stop_message(reason: str) -> str:
    """The status message of an experiment stopped through `rlops.dev/stop`."""
    return f"stopped: {reason}"
