"""One Ray head for all the trials of a local `rlops run`.

A trial that starts its own Ray pays for it on every launch (15-25 s on a small machine);
a trial that connects to a running head pays about 0.1 s. So `rlops run` starts one head,
sized to its --cpus/--gpus, when the first trial starts, and every trial process connects
to it (`--ray-address`). The runner still packs trials by their resources, so Ray never
queues them; a trial that crashes only ends its own job.

The head is a small process of its own (`python -m rlops.backends.local.rayhead`) in its own
session: Ctrl-C at the terminal reaches only the runner, which stops the trials gracefully
before it stops the head. Ray's processes share the head process's fate. The head ends:
- when the runner writes "stop" (the run ended: finished, interrupted or failed);
- when the runner is gone without a word (killed): once every trial it started has
  exited too (they hold the run directory's lock while they checkpoint), or after
  `--orphan-grace` seconds;
- on SIGTERM, SIGINT or SIGHUP.
Whatever is left of it afterwards (any process naming its temporary directory) is killed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Protocol

STOP = b"stop\n"


@dataclass(frozen=True)
class RayCluster:
    """Where trials connect, and the environment they need for it (Ray's auth mode)."""

    address: str
    env: Mapping[str, str] = field(default_factory=dict)


class RaySource(Protocol):
    """The Ray cluster the trials of a run connect to."""

    def cluster(self) -> RayCluster:
        """The cluster (started on first use)."""
        ...

    def close(self) -> None:
        """Stop what this source started."""
        ...


@dataclass(frozen=True)
class ExistingCluster:
    """A cluster someone else runs (`--ray-address`): used, never stopped."""

    address: str

    def cluster(self) -> RayCluster:
        return RayCluster(self.address)

    def close(self) -> None:
        return None


class HeadError(RuntimeError):
    """The shared Ray head did not start."""


def ray_processes(temp_dir: Path) -> list[int]:
    """Process ids of the processes whose command line names `temp_dir` (one head's)."""
    needle = str(temp_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_processes(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def head_environment(base: Mapping[str, str], gpu_ids: Sequence[int]) -> dict[str, str]:
    """The head process's environment: a new cluster (no RAY_ADDRESS) seeing the run's GPUs."""
    env = {k: v for k, v in base.items() if k != "RAY_ADDRESS"}
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpu_ids)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def read_line(stream: IO[bytes], process: subprocess.Popen[bytes], seconds: float) -> bytes:
    """The first line `process` writes to `stream`, or b"" when it exits or time is up."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([stream], [], [], min(left, 0.5))
        if ready:
            return stream.readline()
        if process.poll() is not None:
            return b""
    return b""


class SharedHead:
    """One Ray head for a run, started on first use, stopped by close()."""

    def __init__(
        self,
        cpus: float,
        gpu_ids: Sequence[int],
        lock: Path,
        log: Path,
        start_seconds: float = 180.0,
        orphan_grace_seconds: float = 360.0,
    ) -> None:
        self.cpus = max(1, math.ceil(cpus))
        self.gpu_ids = tuple(gpu_ids)
        self.lock = lock
        self.log = log
        self.start_seconds = start_seconds
        self.orphan_grace_seconds = orphan_grace_seconds
        self.temp_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._cluster: RayCluster | None = None

    def cluster(self) -> RayCluster:
        if self._cluster is None:
            self._cluster = self._start()
        return self._cluster

    def _start(self) -> RayCluster:
        # Short: Ray's socket paths under it must stay within 107 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rlops-ray-", dir="/tmp"))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "rlops.backends.local.rayhead",
                 "--cpus", str(self.cpus), "--gpus", str(len(self.gpu_ids)),
                 "--temp-dir", str(self.temp_dir), "--lock", str(self.lock),
                 "--orphan-grace", f"{self.orphan_grace_seconds:g}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=head_environment(os.environ, self.gpu_ids),
                start_new_session=True,
            )  # fmt: skip
        assert self._process.stdout is not None
        line = read_line(self._process.stdout, self._process, self.start_seconds)
        try:
            info = json.loads(line)
            return RayCluster(str(info["address"]), dict(info["env"]))
        except (ValueError, KeyError, TypeError):
            self.close()
            raise HeadError(
                f"the Ray head for this run did not start within {self.start_seconds:g}s; "
                f"see {self.log} (or pass --isolated-ray: each trial starts its own Ray)"
            ) from None

    def close(self) -> None:
        """Stop the head and everything of it; safe to call twice."""
        process, self._process, self._cluster = self._process, None, None
        if process is not None:
            assert process.stdin is not None
            try:
                process.stdin.write(STOP)
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self.temp_dir is not None:
            # Ray's own shutdown ends its processes; anything that lingers is killed.
            deadline = time.monotonic() + 10
            while (left := ray_processes(self.temp_dir)) and time.monotonic() < deadline:
                time.sleep(0.2)
            kill_processes(left)
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None


# The head process.


def wait_for_lock(lock: Path, seconds: float) -> None:
    """Until nobody else holds `lock` (the runner and its trials), at most `seconds`."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(1.0)
    finally:
        os.close(fd)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def serve(args: argparse.Namespace) -> int:
    """Start the head, say where it is (one JSON line), hold it until told or orphaned."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    import ray

    try:
        ray.init(
            num_cpus=args.cpus,
            num_gpus=args.gpus,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=str(args.temp_dir),
        )
        signal.signal(signal.SIGTERM, _exit_on_signal)  # ray.init installs its own
        auth = {k: os.environ[k] for k in ("RAY_AUTH_MODE",) if k in os.environ}
        address = ray.get_runtime_context().gcs_address
        print(
            f"rlops: Ray head {address} ({args.cpus} CPUs, {args.gpus} GPUs) in {args.temp_dir}",
            file=sys.stderr,
            flush=True,
        )
        print(json.dumps({"address": address, "env": auth}), flush=True)
        if sys.stdin.buffer.readline() != STOP:  # the runner is gone without a word
            wait_for_lock(args.lock, args.orphan_grace)
    finally:
        ray.shutdown()
        shutil.rmtree(args.temp_dir, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rlops.backends.local.rayhead",
        description="Hold one Ray head for the trials of a local `rlops run`.",
    )
    parser.add_argument("--cpus", type=int, required=True, help="CPUs Ray may schedule.")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs Ray may schedule.")
    parser.add_argument("--temp-dir", type=Path, required=True, help="Ray's temporary directory.")
    parser.add_argument("--lock", type=Path, required=True, help="The run directory's lock.")
    parser.add_argument(
        "--orphan-grace",
        type=float,
        default=360.0,
        help="Once the runner is gone: seconds its trials may still use the head.",
    )
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
