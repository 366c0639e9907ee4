"""Waiting for a condition the tests cannot await directly: the one `wait_until` of the suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    timeout: float = 15.0,
    what: str = "",
    *,
    interval: float = 0.05,
    max_interval: float = 0.5,
) -> T:
    """Call `check` until it returns something truthy, and return that; fail naming `what`
    (and the last value) after `timeout` s. The pause between calls starts at `interval`
    and grows to `max_interval`."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what or check} (last: {result!r})"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, max(interval, max_interval))
