"""Warm trial processes: a launcher that has imported torch, Ray and RLlib forks each trial.

A trial started as `python -m rlops.runtime ...` spends seconds importing torch, Ray and
RLlib before it trains. The warm launcher (`python -m rlops.backends.local.warm`, one per
run, started with the executor) imports them once, without `ray.init`, and then forks a
child per launch that runs the command as the interpreter would: it takes the launch's
environment, working directory, log (stdout and stderr) and inherited descriptors, gets a
session of its own and dies with the launcher, reseeds its random generators, and runs
the `-m` module or script as `__main__`. Exit codes and signals are the subprocess's: the
runner signals the child's pid (SIGTERM/SIGUSR1 reach the runtime's own handlers) and
kills its process group; the launcher reports how it ended over the socket it was started
with, and reaps it only once the runner has read that, so the pid is never reused while
the runner may still signal it. Each launch is a new process: trials share nothing but
the imported code.

Only launches of this interpreter with `-m MODULE` or `SCRIPT.py` are forked; anything
else (and every launch when the launcher is off) is a plain subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

# What the launcher imports before it forks: what an RLlib trial imports up to its first
# iteration, as far as that is fork-safe (building a PPO CartPole algorithm imports some 900
# modules more than `import ray.rllib`: torch._dynamo, torch.distributed, sympy...).
# Ray reads some settings (its auth mode) when imported, so what imports Ray waits for the
# first launch to say how trials connect (its RAY_* variables); the rest is imported while
# the run's head starts. Not RLlib, Tune or Ray Data: importing them draws from Ray's
# random ID generator, whose state forked children would then share (the same object and
# subscriber IDs in every trial; `ray_ids_differ` checks). A module missing here is skipped.
EARLY_PRELOAD = (
    "torch", "torch._dynamo", "torch.distributed.fsdp", "numpy", "numpy.testing", "yaml",
    "pydantic", "pydantic.v1", "gymnasium.envs.classic_control", "pyarrow.json",
    "starlette.concurrency", "starlette.datastructures", "anyio.abc",
)  # fmt: skip
DEFAULT_PRELOAD = (
    "ray", "ray._private.arrow_serialization", "ray.util.placement_group", "ray.actor",
    "rlops.runtime.main",
)  # fmt: skip
READY_TIMEOUT_SECONDS = 120.0
_MAX_MESSAGE = 1 << 20
_MAX_FDS = 16


def forkable(argv: Sequence[str]) -> bool:
    """Whether the launcher can run `argv`: this Python with `-m MODULE` or a script."""
    if len(argv) < 2 or os.path.realpath(argv[0]) != os.path.realpath(sys.executable):
        return False
    return (argv[1] == "-m" and len(argv) > 2) or argv[1].endswith(".py")


class _Channel:
    """JSON lines over a unix socket, descriptors attached to a message as SCM_RIGHTS."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._fds: list[int] = []

    def send(self, message: dict[str, Any], fds: Sequence[int] = ()) -> None:
        data = json.dumps({**message, "fds": len(fds)}).encode() + b"\n"
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def pending(self) -> bool:
        return b"\n" in self._buffer

    def receive(self, timeout: float | None) -> tuple[dict[str, Any], list[int]] | None:
        """The next message and the descriptors that came with it; None after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.sock], [], [], wait)[0]:
                return None
            data, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX_MESSAGE, _MAX_FDS)
            if not data:
                raise EOFError("the warm launcher's socket closed")
            self._buffer += data
            self._fds += fds
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = json.loads(line)
        count = int(message.pop("fds", 0))
        fds, self._fds = self._fds[:count], self._fds[count:]
        return message, fds


class WarmProcess:
    """A forked trial, as far as the executor uses `subprocess.Popen`."""

    def __init__(self, launcher: WarmLauncher, pid: int, args: list[str]) -> None:
        self.launcher = launcher
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.launcher.pump(0.0)
        if self.returncode is None and self.launcher.lost and not _exists(self.pid):
            # The launcher died (its children were sent SIGTERM) before telling how this one
            # ended: the executor reads the attempt's result.json.
            self.returncode = -signal.SIGTERM
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            self.launcher.pump(0.2 if self.launcher.lost else left)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)


class WarmLauncher:
    """The runner's side of the launcher: starts it, asks it for trials, hears them end."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        early: Sequence[str] = EARLY_PRELOAD,
        inherit_fds: Sequence[int] = (),
        ready_timeout: float = READY_TIMEOUT_SECONDS,
    ) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._channel = _Channel(ours)
        self._ready_timeout = ready_timeout
        self._ready = False
        self.lost = False  # The launcher ended or failed: new launches are subprocesses.
        self._processes: dict[int, WarmProcess] = {}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-u",
                "-m",
                __name__,
                str(theirs.fileno()),
                ",".join(early),
                ",".join(preload),
            ],
            stdin=subprocess.DEVNULL,
            env=dict(os.environ if env is None else env),
            start_new_session=True,
            pass_fds=(theirs.fileno(), *inherit_fds),
            preexec_fn=_die_with_parent,
        )
        theirs.close()

    def popen(
        self,
        argv: Sequence[str],
        *,
        log: IO[bytes],
        env: dict[str, str],
        cwd: str | os.PathLike[str],
        pass_fds: Sequence[int] = (),
    ) -> WarmProcess:
        """Fork a child running `argv` as `subprocess.Popen` with these arguments would."""
        if not self._ready:
            ray_env = {k: v for k, v in env.items() if k.startswith("RAY_")}
            self._channel.send({"environ": ray_env})
            self._expect("ready", self._ready_timeout)
            self._ready = True
        request = {"argv": list(argv), "env": env, "cwd": os.fspath(cwd)}
        self._channel.send(request, [log.fileno(), *pass_fds])
        pid = int(self._expect("started", self._ready_timeout)["started"])
        process = WarmProcess(self, pid, list(argv))
        self._processes[pid] = process
        self.pump(0.0)  # An exit that came with the reply.
        return process

    def pump(self, timeout: float | None) -> None:
        """Read what the launcher said within `timeout` (exits and errors)."""
        if self.lost:
            return
        try:
            received = self._channel.receive(timeout)
            while received is not None:
                self._handle(received[0])
                received = self._channel.receive(0.0)
        except (EOFError, OSError) as exc:
            self.give_up(exc)

    def give_up(self, reason: BaseException) -> None:
        """Stop using the launcher: say why, once; later launches are subprocesses."""
        if not self.lost:
            self.lost = True
            print(
                f"rlops: warm trial launcher unusable ({reason}); trials start cold",
                file=sys.stderr,
            )

    def close(self) -> None:
        """End the launcher (its children, if any still run, get SIGTERM from it dying)."""
        self.lost = True
        with contextlib.suppress(OSError):
            self._channel.sock.shutdown(socket.SHUT_RDWR)
        self._channel.sock.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _expect(self, key: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            received = self._channel.receive(max(0.0, deadline - time.monotonic()))
            if received is None:
                raise RuntimeError(f"the warm launcher did not answer {key!r} in {timeout:g} s")
            message = received[0]
            if key in message:
                return message
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        if "error" in message:
            raise RuntimeError(f"warm launcher: {message['error']}")
        pid = message.get("exited")
        process = self._processes.pop(int(pid), None) if pid is not None else None
        if process is not None:
            process.returncode = int(message["code"])
            self._channel.send({"reap": process.pid})


def launch(
    launcher: WarmLauncher | None,
    argv: Sequence[str],
    *,
    log: IO[bytes],
    env: dict[str, str],
    cwd: str | os.PathLike[str],
    pass_fds: Sequence[int] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes] | WarmProcess:
    """A trial process: forked by `launcher` when there is one and it can run `argv`,
    otherwise a subprocess in a session of its own."""
    if launcher is not None and not launcher.lost and forkable(argv):
        try:
            return launcher.popen(argv, log=log, env=env, cwd=cwd, pass_fds=pass_fds)
        except (RuntimeError, EOFError, OSError) as exc:
            launcher.give_up(exc)
    return subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
        cwd=cwd, start_new_session=True, pass_fds=tuple(pass_fds), preexec_fn=preexec_fn,
    )  # fmt: skip


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    from rlops.backends.local.executor import _die_with_parent as die

    die()


def serve(fd: int, early: Sequence[str], preload: Sequence[str]) -> int:
    """The launcher: import `early`, take the first launch's RAY_* variables, import
    `preload`, say ready, then fork a child per request."""
    from rlops.backends.local.forked import exit_code_of

    channel = _Channel(socket.socket(fileno=fd))
    _preload(early)
    try:
        received = channel.receive(None)
    except EOFError:
        return 0
    assert received is not None
    os.environ.update(received[0].get("environ", {}))
    _preload(preload)
    if not ray_ids_differ():
        channel.send({"error": "forked children would share Ray's random ID generator"})
        return 1
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    running: set[int] = set()  # Children whose end the runner has not been told.
    told: set[int] = set()  # Ended, told, not yet reaped (the runner may still signal them).
    channel.send({"ready": True})
    while True:
        for pid in list(running):
            code = exit_code_of(pid)
            if code is not None:
                running.discard(pid)
                told.add(pid)
                channel.send({"exited": pid, "code": code})
        wait = 0.0 if channel.pending() else 1.0
        readable = select.select([channel.sock.fileno(), wake_read], [], [], wait)[0]
        if wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 512)
        if channel.sock.fileno() not in readable and not channel.pending():
            continue
        try:
            _serve_requests(channel, running, told)
        except EOFError:  # The runner closed its end, or died.
            return 0


def ray_ids_differ() -> bool:
    """Whether two children forked now draw different random Ray IDs (true without Ray)."""
    if "ray._raylet" not in sys.modules:
        return True
    read, write = os.pipe()
    for _ in range(2):
        if os.fork() == 0:
            code = 1
            try:
                from ray._raylet import ObjectID

                os.write(write, ObjectID.from_random().binary())
                code = 0
            finally:
                os._exit(code)
    os.close(write)
    for _ in range(2):
        os.wait()
    with os.fdopen(read, "rb") as drawn:
        data = drawn.read()
    half = len(data) // 2
    return len(data) % 2 == 0 and half > 0 and data[:half] != data[half:]


def _preload(modules: Sequence[str]) -> None:
    import importlib

    for module in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def _serve_requests(channel: _Channel, running: set[int], told: set[int]) -> None:
    from rlops.backends.local.forked import run_child

    received = channel.receive(0.0)
    while received is not None:
        message, fds = received
        if "reap" in message and int(message["reap"]) in told:
            told.discard(int(message["reap"]))
            os.waitpid(int(message["reap"]), 0)
        elif "argv" in message:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                channel.sock.close()
                run_child(message, fds)  # Never returns.
            for descriptor in fds:
                os.close(descriptor)
            running.add(pid)
            channel.send({"started": pid})
        received = channel.receive(0.0)


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), *(a.split(",") if a else [] for a in sys.argv[2:4])))
