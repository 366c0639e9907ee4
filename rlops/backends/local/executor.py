"""The local backend: trial processes on this machine, as an `ExperimentBackend`.

Submitting starts a trial's runtime in its run directory (`Submission.run_dir`, where its
spec.yaml is; output to `attempts/<attempt>.log`), observing reports how the ones that
ended ended (their exit codes, all at once), ending asks them to checkpoint and end
(SIGTERM: the runtime exits 75) and cancelling kills them. It packs processes onto this
machine's CPUs and GPUs (no room: `NoRoom`); given a RaySource, its trials connect to that
one Ray cluster (`--ray-address`) instead of each starting its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from rlops.api import Backend, Phase, ResourcesSpec
from rlops.api.experiment import BackendRef, RLExperiment
from rlops.api.runinfo import SPEC_FILE, RunFileError, log_path, read_result
from rlops.backends.base import (
    EndKind,
    ExperimentBackend,
    NoRoom,
    Observation,
    Refused,
    Submission,
    exit_observation,
    submitted_until_full,
    tracked,
    work_key,
)
from rlops.backends.local.rayhead import RayCluster, RaySource
from rlops.backends.local.warm import WarmLauncher, WarmProcess, launch
from rlops.backends.packing import Allocation, Request, Slots

PR_SET_PDEATHSIG = 1


def default_command() -> list[str]:
    return [sys.executable, "-m", "rlops.runtime"]


def runtime_command(
    command: Sequence[str], run_dir: Path, attempt: int, cluster: RayCluster | None = None
) -> list[str]:
    connect = ["--ray-address", cluster.address] if cluster is not None else []
    return [
        *command,
        "--spec",
        str((run_dir / SPEC_FILE).resolve()),
        "--run-dir",
        str(run_dir.resolve()),
        "--attempt",
        str(attempt),
        *connect,
    ]


def trial_environment(
    base: dict[str, str],
    allocation: Allocation,
    cluster: RayCluster | None = None,
    pause_at: int | None = None,
) -> dict[str, str]:
    """The trial's environment: its GPUs only, math libraries sized to its CPUs, what
    connecting to the run's Ray cluster needs, and its pause point if it has one."""
    env = dict(base)
    env.pop("RLOPS_PAUSE_AT_ITERATION", None)
    if pause_at is not None:
        env["RLOPS_PAUSE_AT_ITERATION"] = str(pause_at)
    if cluster is not None:
        env.update(cluster.env)
    env["CUDA_VISIBLE_DEVICES"] = allocation.cuda_visible_devices()
    threads = str(allocation.threads())
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = threads
    env["RLOPS_TRIAL_CPUS"] = f"{allocation.cpus:g}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# Loaded in the parent: the child, between fork and exec, only calls into it.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child: SIGTERM it when the runner dies, so it checkpoints instead of lingering."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Process:
    popen: subprocess.Popen[bytes] | WarmProcess
    allocation: Allocation
    log: IO[bytes]
    run_dir: Path
    attempt: int

    @property
    def ref(self) -> BackendRef:
        return BackendRef(kind="Process", pid=self.popen.pid)

    @property
    def running(self) -> Observation:
        return Observation(Phase.RUNNING, "running", attempt=self.attempt,
                           name=f"process {self.popen.pid}")  # fmt: skip


def ended(code: int, run_dir: Path, attempt: int) -> Observation:
    """How a trial process that exited with `code` ended. One killed by a signal after it
    wrote its result.json (e.g. Ctrl-C while Ray shut down) ended as that result says."""
    if code < 0:
        try:
            result = read_result(run_dir)
        except RunFileError:
            result = None
        if result is not None and result.attempt == attempt:
            return replace(exit_observation(result.exit_code), exit_code=code)
    return exit_observation(code)


class LocalBackend:
    """Trial processes on this machine, packed onto its CPUs and GPUs (see the module)."""

    backend = Backend.LOCAL

    def __init__(
        self,
        slots: Slots,
        command: Sequence[str] = (),
        inherit_fds: Sequence[int] = (),
        env: dict[str, str] | None = None,
        ray: RaySource | None = None,
        close_grace_seconds: float = 120.0,
        warm: WarmLauncher | None = None,
    ) -> None:
        self.slots = slots
        self.command = list(command) or default_command()
        self.inherit_fds = tuple(inherit_fds)
        self.env = dict(os.environ if env is None else env)
        self.ray = ray  # None: each trial starts a Ray of its own.
        self.close_grace_seconds = close_grace_seconds
        self._processes: dict[str, _Process] = {}  # by work_key
        self._ended: dict[str, Observation] = {}  # how each one's last process ended
        self.warm = warm  # Forks trials that use Ray, imports done (rlops.backends.local.warm).

    def check(self, name: str, resources: ResourcesSpec) -> None:
        self.slots.check(Request.of(resources), name)

    def submit(self, submission: Submission) -> BackendRef:
        """Start the attempt's process (the one already running it, if any); `NoRoom`
        when its CPUs and GPUs are taken."""
        experiment, run_dir, attempt = submission.experiment, submission.run_dir, submission.attempt
        if run_dir is None:
            raise Refused(f"{experiment.metadata.name}: a local run needs its run directory")
        key = work_key(experiment)
        running = self._processes.get(key)
        if running is not None and running.attempt == attempt:
            return running.ref
        allocation = self.slots.allocate(Request.of(experiment.spec.resources))
        if allocation is None:
            raise NoRoom(key)
        try:
            uses_ray = experiment.spec.command is None  # a command trainer needs no Ray
            cluster = self.ray.cluster() if self.ray is not None and uses_ray else None
        except BaseException:
            self.slots.release(allocation)
            raise
        path = log_path(run_dir, attempt)
        path.parent.mkdir(parents=True, exist_ok=True)
        log = path.open("ab")
        try:
            # In a session of its own: Ctrl-C reaches the runner, which stops trials gracefully.
            popen = launch(
                self.warm if uses_ray else None,
                runtime_command(self.command, run_dir, attempt, cluster),
                log=log,
                env=trial_environment(self.env, allocation, cluster, submission.pause_at),
                cwd=run_dir,
                pass_fds=self.inherit_fds,
                preexec_fn=_die_with_parent,
            )
        except OSError:
            log.close()
            self.slots.release(allocation)
            raise
        process = _Process(popen, allocation, log, run_dir, attempt)
        self._processes[key] = process
        self._ended.pop(key, None)
        return process.ref

    def submit_many(self, submissions: Sequence[Submission]) -> list[BackendRef | Refused]:
        """One by one, in order, until one finds no room."""
        return submitted_until_full(self, submissions)

    def observe(
        self, work: Sequence[tuple[RLExperiment, BackendRef | None]]
    ) -> dict[str, Observation | None]:
        """Running, or how its process ended (its CPUs and GPUs are free again)."""
        seen: dict[str, Observation | None] = {}
        for experiment, _ in work:
            key = work_key(experiment)
            process = self._processes.get(key)
            if process is None:
                seen[key] = self._ended.get(key)
                continue
            code = process.popen.poll()
            if code is None:
                seen[key] = process.running
                continue
            seen[key] = self._ended[key] = ended(code, process.run_dir, process.attempt)
            process.log.close()
            self.slots.release(process.allocation)
            del self._processes[key]
        return seen

    def end(self, experiment: RLExperiment, ref: BackendRef | None, kind: EndKind) -> list[str]:
        """Ask its process to checkpoint and end (SIGTERM to the runtime alone)."""
        return self._signal(experiment, ref, lambda p: p.popen.send_signal(signal.SIGTERM))

    def cancel(self, experiment: RLExperiment | None, ref: BackendRef | None) -> list[str]:
        """Kill its process group now."""
        return self._signal(experiment, ref, lambda p: os.killpg(p.popen.pid, signal.SIGKILL))

    def close(self) -> None:
        """Stop trials still running (an error ended the run), then the run's Ray."""
        running = [p for p in self._processes.values() if p.popen.poll() is None]
        for process in running:
            process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.close_grace_seconds
        for process in running:
            try:
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
        for process in self._processes.values():
            process.log.close()
        if self.warm is not None:
            self.warm.close()
        if self.ray is not None:
            self.ray.close()

    def _signal(
        self,
        experiment: RLExperiment | None,
        ref: BackendRef | None,
        send: Callable[[_Process], None],
    ) -> list[str]:
        process = tracked(self._processes, experiment, ref, lambda p: p.ref)
        if process is None or process.popen.poll() is not None:
            return []
        with contextlib.suppress(ProcessLookupError):
            send(process)
        return [str(process.popen.pid)]


# mypy checks here that LocalBackend implements the protocol the drivers drive.
_IMPLEMENTS: Callable[[Slots], ExperimentBackend] = LocalBackend
