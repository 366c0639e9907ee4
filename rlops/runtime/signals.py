"""SIGTERM and SIGUSR1: finish the iteration, checkpoint, exit "requeue me".

The first signal only sets a flag: the training loop sees it after the current
iteration, writes a checkpoint and ends with ExitCode.REQUEUE. A second signal
aborts the iteration at once (RequeueNow); the attempt then ends with REQUEUE
without a new checkpoint, and the next attempt resumes from the latest one.
Kubernetes sends SIGTERM before it kills a pod; SLURM sends SIGUSR1 ahead of the
time limit (`--signal=B:USR1@<s>`) and SIGTERM on preemption or scancel.
"""

from __future__ import annotations

import signal
from types import FrameType, TracebackType
from typing import Any

REQUEUE_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class RequeueNow(Exception):
    """A second signal: stop immediately."""


class SignalWatch:
    """Records requeue signals while installed (a context manager, main thread only).

    `linger`: on exit, ignore the requeue signals instead of restoring the handlers before.
    The attempt is over and its checkpoint stands; a stop or pause that crossed the
    runtime's own end must not kill the process before it writes result.json.
    """

    def __init__(self, linger: bool = False) -> None:
        self.received: signal.Signals | None = None
        self.linger = linger
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> SignalWatch:
        self.install()
        return self

    def install(self) -> None:
        """Handle the requeue signals here (again: `ray.init` replaces the SIGTERM handler)."""
        for sig in REQUEUE_SIGNALS:
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_IGN if self.linger else handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signal.Signals(signum)
        if not first:
            raise RequeueNow(f"second signal {self.received.name}")
