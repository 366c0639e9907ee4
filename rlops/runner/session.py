"""What every `rlops run` needs around its loop: settings, the run directory opened
and locked with a backend for it, Ctrl-C.

The lock is an flock on `<run dir>/.lock`, inherited by the trial processes: a
second runner on the same directory waits until the first one *and* every trial it
started have gone (a trial orphaned by a killed runner is still checkpointing).
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rlops.backends.base import ExperimentBackend
from rlops.runner.display import Display
from rlops.runner.fleet import Fleet
from rlops.runner.rundir import Reopened, prepare

INTERRUPTED = 130


@dataclass(frozen=True)
class RunOptions:
    """What the command line decided for this run."""

    root: Path
    force: bool = False
    new: bool = False
    report: bool = True


@dataclass(frozen=True)
class HeldLock:
    """The run directory's lock while held: its descriptor (trials inherit it) and path."""

    fd: int
    path: Path


BackendFactory = Callable[[HeldLock], ExperimentBackend]


class RunnerSettings(BaseSettings):
    """`rlops run` settings; command-line options override them."""

    model_config = SettingsConfigDict(env_prefix="RLOPS_", extra="ignore")

    runs_root: Path = Field(default=Path("rlops-runs"), description="Where run directories go.")
    poll_seconds: float = Field(default=1.0, description="How often trials are looked at.")
    lock_wait_seconds: float = Field(
        default=180.0,
        description="How long to wait for an earlier runner's trials to checkpoint and exit.",
    )
    stop_grace_seconds: float = Field(
        default=300.0,
        description="After Ctrl-C, how long trials may take to checkpoint before they are killed.",
    )
    quiet_interval_seconds: float = Field(
        default=30.0, description="--quiet: seconds between progress lines."
    )
    trial_command: str = Field(
        default="",
        description=(
            "Command that trains one trial, before `--spec ... --run-dir ... --attempt N` "
            "(shell words); default: this Python with `-m rlops.runtime`."
        ),
    )
    warm_workers: bool = Field(
        default=False,
        description=(
            "Start RLlib trials from a warm launcher that has imported torch and Ray "
            "(one forked process per launch); false (the default for now): a new Python "
            "per launch."
        ),
    )
    max_requeues: int = Field(
        default=20, description="Requeues (exit 75) of one trial in one run before it fails."
    )


class LockBusy(RuntimeError):
    """Another runner, or trials it started, still use the run directory."""


@contextmanager
def run_lock(path: Path, wait_seconds: float, say: Callable[[str], None]) -> Iterator[HeldLock]:
    """Hold `path` exclusively; yields the descriptor to pass on to trial processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"{path.parent}: another `rlops run` (or trial processes it started) "
                        f"still uses this directory after {wait_seconds:g}s; stop it first"
                    ) from None
                if not told:
                    say(
                        f"{path.parent} is in use (an earlier run's trials may be checkpointing); "
                        "waiting"
                    )
                    told = True
                time.sleep(0.5)
        os.set_inheritable(fd, False)
        yield HeldLock(fd, path)
    finally:
        os.close(fd)


class RunLayout(Protocol):
    """The paths every run directory has."""

    @property
    def root(self) -> Path: ...

    @property
    def manifest(self) -> Path: ...

    @property
    def lock(self) -> Path: ...


@contextmanager
def open_run(
    layout: RunLayout,
    manifest: dict[str, Any],
    options: RunOptions,
    settings: RunnerSettings,
    say: Callable[[str], None],
    backend_factory: BackendFactory,
) -> Iterator[tuple[Reopened, ExperimentBackend]]:
    """Prepare the run directory, lock it, and give a backend that is closed at the end
    (however the run ends: its trials and the Ray head it started are stopped)."""
    reopened = prepare(layout.root, layout.manifest, manifest, options.force, options.new, say)
    with run_lock(layout.lock, settings.lock_wait_seconds, say) as lock:
        backend = backend_factory(lock)
        try:
            yield reopened, backend
        finally:
            backend.close()


class DirectoryRun:
    """What an experiment run and a sweep run share: their inputs, and opening the run
    directory (open_run) with them."""

    def __init__(
        self,
        layout: RunLayout,
        manifest: dict[str, Any],
        options: RunOptions,
        settings: RunnerSettings,
        display: Display,
        backend_factory: BackendFactory,
    ) -> None:
        self.manifest = manifest
        self.options = options
        self.settings = settings
        self.display = display
        self.backend_factory = backend_factory
        self.run_layout = layout

    def open(self) -> AbstractContextManager[tuple[Reopened, ExperimentBackend]]:
        return open_run(
            self.run_layout,
            self.manifest,
            self.options,
            self.settings,
            self.display.message,
            self.backend_factory,
        )


class Interrupts:
    """Counts SIGINT/SIGTERM while installed: 1 = stop gracefully, 2 = kill."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def __enter__(self) -> Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


class WindDown:
    """After Ctrl-C: the trials are asked once to checkpoint and stop; a second Ctrl-C, or
    `grace_seconds` later, kills them."""

    def __init__(self, grace_seconds: float, say: Callable[[str], None], message: str) -> None:
        self.grace_seconds = grace_seconds
        self.say = say
        self.message = message
        self.deadline: float | None = None

    def step(self, fleet: Fleet, interrupts: Interrupts) -> bool:
        """One look after Ctrl-C; True once no trial runs any more."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.grace_seconds
            fleet.interrupt()
            self.say(self.message)
        if interrupts.count >= 2 or time.monotonic() > self.deadline:
            fleet.kill()
        return not fleet.running


def pause(seconds: float, interrupts: Interrupts) -> None:
    """Sleep until the next poll, waking early on Ctrl-C."""
    deadline = time.monotonic() + seconds
    seen = interrupts.count
    while interrupts.count == seen and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
