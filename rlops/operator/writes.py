"""Which status writes wait, and which phase transitions get a Kubernetes Event.

A write to an active experiment (Pending, Submitted, Running) that changes only its
message, conditions, progress or result can wait: it is held for at most
`status_flush_seconds` and goes out with the object's next write — usually the next
phase transition (KubeRay's Initializing message rides with Running; a run's last
progress and its result with Succeeded) — or alone when the window ends. A phase change,
and any write to a Paused or finished object, is written at once, with whatever is held.

Events are posted on phase transitions that say something a `kubectl describe` reader
needs: every one but an experiment's first submission, which follows its creation at once
(a retry and a resume are posted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlops.api import Phase

SentKey = tuple[str, str, str]  # plural, namespace, name

ACTIVE = frozenset({Phase.PENDING.value, Phase.SUBMITTED.value, Phase.RUNNING.value})
WAITING_FIELDS = frozenset({"message", "conditions", "progress", "result"})


def can_wait(old: Mapping[str, Any], changed: Collection[str]) -> bool:
    """Whether a write of the fields `changed` to status `old` may be held."""
    return old.get("phase") in ACTIVE and set(changed) <= WAITING_FIELDS


def worth_an_event(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether the transition from status `old` to `new` gets an Event."""
    phase = new.get("phase")
    if phase is None or phase == old.get("phase"):
        return False
    first_submission = (
        phase == Phase.SUBMITTED.value
        and old.get("phase") in (None, Phase.PENDING.value)
        and int(new.get("attempts") or 1) == 1
    )
    return not first_submission


@dataclass
class Held:
    """Changes not written yet: `status` is `base` (what the server has) with them."""

    base: dict[str, Any]
    status: dict[str, Any]
    fields: set[str] = field(default_factory=set)
    timer: asyncio.TimerHandle | None = None


class HeldWrites:
    """The held status changes of each object; `flush(key)` writes them when due."""

    def __init__(
        self, window: float, flush: Callable[[SentKey], Coroutine[Any, Any, None]]
    ) -> None:
        self.window = window
        self.flush = flush
        self.held: dict[SentKey, Held] = {}

    def status(self, key: SentKey) -> dict[str, Any] | None:
        held = self.held.get(key)
        return held.status if held is not None else None

    def hold(
        self, key: SentKey, base: Mapping[str, Any], status: Mapping[str, Any],
        fields: Collection[str],
    ) -> None:  # fmt: skip
        """Hold `status`; the first change held is written `window` s later at the latest."""
        held = self.held.get(key)
        if held is None:
            held = self.held[key] = Held(dict(base), dict(status))
            loop = asyncio.get_running_loop()
            held.timer = loop.call_later(self.window, lambda: loop.create_task(self.flush(key)))
        held.status = dict(status)
        held.fields.update(fields)

    def take(self, key: SentKey) -> Held | None:
        """The held changes, to be written now (and no longer by the timer)."""
        held = self.held.pop(key, None)
        if held is not None and held.timer is not None:
            held.timer.cancel()
        return held

    def forget(self, key: SentKey) -> None:
        self.take(key)
