"""The local executor: trial processes on this machine (the `Executor` protocol is in
`rlops.backends.base`).

An Executor starts a trial's runtime in its run directory, reports which ones
ended (with their exit codes, all at once), and stops them (SIGTERM: the runtime
checkpoints and exits 75). The local executor packs processes onto this machine's
CPUs and GPUs; given a RaySource, its trials connect to that one Ray cluster
(`--ray-address`) instead of each starting its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from rlops.api import Backend, ResourcesSpec
from rlops.api.runinfo import RunFileError, read_result
from rlops.backends.base import Handle, LaunchRequest, Observation, exit_observation
from rlops.backends.local.rayhead import RayCluster, RaySource
from rlops.backends.local.warm import WarmLauncher, WarmProcess, launch
from rlops.backends.packing import Allocation, Request, Slots

PR_SET_PDEATHSIG = 1


def default_command() -> list[str]:
    return [sys.executable, "-m", "rlops.runtime"]


def runtime_command(
    command: Sequence[str], request: LaunchRequest, cluster: RayCluster | None = None
) -> list[str]:
    connect = ["--ray-address", cluster.address] if cluster is not None else []
    return [
        *command,
        "--spec",
        str(request.spec.resolve()),
        "--run-dir",
        str(request.run_dir.resolve()),
        "--attempt",
        str(request.attempt),
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


class LocalExecutor:
    """Trial processes on this machine, packed onto its CPUs and GPUs."""

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
        self._processes: dict[str, _Process] = {}
        self.warm = warm  # Forks trials that use Ray, imports done (rlops.backends.local.warm).

    def check(self, name: str, resources: ResourcesSpec) -> None:
        self.slots.check(Request.of(resources), name)

    def start(self, request: LaunchRequest) -> Handle | None:
        allocation = self.slots.allocate(Request.of(request.resources))
        if allocation is None:
            return None
        try:
            cluster = self.ray.cluster() if self.ray is not None and request.uses_ray else None
        except BaseException:
            self.slots.release(allocation)
            raise
        request.log.parent.mkdir(parents=True, exist_ok=True)
        log = request.log.open("ab")
        try:
            # In a session of its own: Ctrl-C reaches the runner, which stops trials gracefully.
            popen = launch(
                self.warm if request.uses_ray else None,
                runtime_command(self.command, request, cluster),
                log=log,
                env=trial_environment(self.env, allocation, cluster, request.pause_at),
                cwd=request.run_dir,
                pass_fds=self.inherit_fds,
                preexec_fn=_die_with_parent,
            )
        except OSError:
            log.close()
            self.slots.release(allocation)
            raise
        self._processes[request.name] = _Process(
            popen, allocation, log, request.run_dir, request.attempt
        )
        return Handle(request.name, request.attempt, str(popen.pid))

    def poll(self, handles: Sequence[Handle]) -> dict[str, Observation]:
        seen = {}
        for handle in handles:
            process = self._processes.get(handle.name)
            if process is None:
                continue
            code = process.popen.poll()
            if code is None:
                continue
            seen[handle.name] = ended(code, process.run_dir, process.attempt)
            process.log.close()
            self.slots.release(process.allocation)
            del self._processes[handle.name]
        return seen

    def stop(self, handle: Handle) -> None:
        self._signal(handle, signal.SIGTERM, group=False)

    def kill(self, handle: Handle) -> None:
        self._signal(handle, signal.SIGKILL, group=True)

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

    def _signal(self, handle: Handle, sig: signal.Signals, group: bool) -> None:
        process = self._processes.get(handle.name)
        if process is None or process.popen.poll() is not None:
            return
        try:
            if group:
                os.killpg(process.popen.pid, sig)
            else:
                process.popen.send_signal(sig)
        except ProcessLookupError:
            pass
