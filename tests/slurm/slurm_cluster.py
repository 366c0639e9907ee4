"""A real single-node SLURM cluster on loopback: munged, slurmctld and slurmd from Debian.

Everything lives in one temporary directory: the munge key and socket, slurm.conf,
state, spool and logs. Clients find it through `SLURM_CONF` (see `env`). Readiness is
awaited by polling `scontrol ping` and `sinfo`, never by sleeping a fixed time.

Run `python tests/slurm/slurm_cluster.py` to start one by hand (Ctrl-C stops it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
NODE = "localhost"


class ClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; ClusterError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


def missing_binaries() -> list[str]:
    needed = [*DAEMONS, "/usr/bin/sbatch", "/usr/bin/squeue", "/usr/bin/scontrol"]
    return [b for b in needed if not os.access(b, os.X_OK)]


def memory_mb() -> int:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return max(512, int(pages / 2**20 * 0.9))


def slurm_conf(
    root: Path, ctld_port: int, slurmd_port: int, cpus: int, min_job_age: int = 3600
) -> str:
    memory = memory_mb()
    return f"""\
ClusterName=rlops-test
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also the requeue delay (default 120 s): short for the tests.
AuthInfo=socket={root}/munge/munge.sock,cred_expire=10
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/log/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
LaunchParameters=use_interactive_step
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
MinJobAge={min_job_age}
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
NodeName={NODE} NodeHostname={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory}
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


@dataclass
class SlurmCluster:
    """One running test cluster. `env` is what every client needs (SLURM_CONF)."""

    root: Path
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    min_job_age: int = 3600  # seconds slurmctld keeps a finished job (then: sacct only)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.sock"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    # --- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        missing = missing_binaries()
        if missing:
            raise ClusterError(f"SLURM is not installed (missing {', '.join(missing)})")
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            key.chmod(0o400)
        self.conf.write_text(
            slurm_conf(self.root, free_port(), free_port(), self.cpus, self.min_job_age)
        )
        self._spawn(
            "munged",
            [
                "/usr/sbin/munged", "--foreground", "--force",
                f"--key-file={key}", f"--socket={self.munge_socket}",
                f"--pid-file={self.root}/munge/munged.pid",
                f"--seed-file={self.root}/munge/munged.seed",
                f"--log-file={self.root}/log/munged.log",
            ],
        )  # fmt: skip
        wait_for(self.munge_socket.exists, 15, "munged's socket")
        self.start_slurmctld()
        self._spawn("slurmd", ["/usr/sbin/slurmd", "-D", "-f", str(self.conf), "-N", NODE])
        wait_for(self.node_idle, timeout, "node localhost to be idle (sinfo)")

    def start_slurmctld(self, timeout: float = 30) -> None:
        # -i: ignore state files that cannot be recovered; a restart keeps jobs (no -c).
        self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-i", "-f", str(self.conf)])
        wait_for(self.controller_up, timeout, "slurmctld to answer `scontrol ping`")

    def stop_slurmctld(self) -> None:
        self._stop("slurmctld")

    def restart_slurmctld(self) -> None:
        self.stop_slurmctld()
        self.start_slurmctld()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run("scancel", "--full", "--user=root")
        for name in ("slurmrestd", "slurmd", "slurmctld", "munged"):
            self._stop(name)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.root / "log" / f"{name}.stdout").open("ab")
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env or self.env, start_new_session=True
        )

    def _stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    # --- slurmrestd --------------------------------------------------------------------

    def start_slurmrestd(self, timeout: float = 20) -> Path:
        """slurmrestd on a unix socket with local auth; returns the socket path."""
        sock = self.root / "slurmrestd.sock"
        running = self.procs.get("slurmrestd")
        if running is not None and running.poll() is None:
            return sock
        env = {
            **self.env,
            # The tests run as root; slurmrestd refuses root unless told this is intended.
            "SLURMRESTD_SECURITY": "disable_user_check",
        }
        # Only the slurmctld API: the slurmdbd one (dbv0.0.38) needs accounting.
        argv = ["/usr/sbin/slurmrestd", "-f", str(self.conf), "-a", "rest_auth/local",
                "-s", "openapi/v0.0.38"]  # fmt: skip
        self._spawn("slurmrestd", [*argv, f"unix:{sock}"], env=env)
        wait_for(sock.exists, timeout, "slurmrestd's socket")
        return sock

    # --- probes ------------------------------------------------------------------------

    def run(self, *argv: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def controller_up(self) -> bool:
        self._check_alive()
        out = self.run("scontrol", "ping")
        return out.returncode == 0 and "UP" in out.stdout

    def node_idle(self) -> bool:
        self._check_alive()
        out = self.run("sinfo", "-h", "-N", "-o", "%T")
        return out.returncode == 0 and out.stdout.strip().rstrip("*") in ("idle", "mixed")

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = self.root / "log" / f"{name}.stdout"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise ClusterError(f"{name} exited with {proc.returncode}:\n{tail}")

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            parts.append(f"==> {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@contextlib.contextmanager
def running_cluster(root: Path | None = None, min_job_age: int = 3600) -> Iterator[SlurmCluster]:
    # A short path: unix socket paths are limited to 107 bytes.
    owned = root is None
    path = root or Path(tempfile.mkdtemp(prefix="rlops-slurm-", dir="/tmp"))
    cluster = SlurmCluster(path, min_job_age=min_job_age)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if owned and not os.environ.get("RLOPS_KEEP_SLURM"):
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    with running_cluster() as c:
        print(f"export SLURM_CONF={c.conf}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
