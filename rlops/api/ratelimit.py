"""Rate-limited error logs: a permanently failing object logs once per interval, not on
every retry (with how many were held back), so one bad object cannot flood the logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

DEFAULT_INTERVAL_SECONDS = 300.0


class ErrorLog:
    """Logs an error of `key` at most once per `interval` while its message is the same
    (`any_message`: whatever its message, for keys that name a kind of error rather than
    an object, such as the rejections of an endpoint anyone can call)."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        any_message: bool = False,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.any_message = any_message
        self.last: dict[str, tuple[str, float, int]] = {}  # key -> message, when, held back

    def log(
        self,
        key: str,
        message: str,
        level: int = logging.ERROR,
        exc: BaseException | None = None,
    ) -> bool:
        """Log `message` unless `key` logged it within the interval; True when logged."""
        now = self.clock()
        previous = self.last.get(key)
        same = previous is not None and (self.any_message or previous[0] == message)
        if previous is not None and same and now - previous[1] < self.interval:
            self.last[key] = (previous[0], previous[1], previous[2] + 1)
            return False
        held = previous[2] if previous is not None and same else 0
        suffix = f" ({held} more in the last {self.interval:.0f} s)" if held else ""
        self.logger.log(level, "%s%s", message, suffix, exc_info=exc)
        self.last[key] = (message, now, 0)
        return True

    def forget(self, key: str) -> None:
        self.last.pop(key, None)
