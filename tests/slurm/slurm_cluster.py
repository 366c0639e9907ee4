"""A real SLURM cluster for the tests: munged, slurmctld and slurmd from Debian.

scripts/slurm-cluster.sh starts and stops it (one node on loopback, or N nodes each in
its own network namespace); this module drives that script and adds what only tests need
(slurmrestd, probes). Everything lives in one temporary directory: the munge key and
socket, slurm.conf, state, spool and logs. Clients find it through `SLURM_CONF` (see
`env`). Readiness is awaited by polling `scontrol ping` and `sinfo`, never by sleeping.

Start one by hand with `scripts/slurm-cluster.sh up [--nodes N]` (and `down`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import wait_until

DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
NODE = "localhost"  # the one node of a cluster without network namespaces
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster.sh"


class ClusterError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def missing_binaries() -> list[str]:
    needed = [*DAEMONS, "/usr/bin/sbatch", "/usr/bin/squeue", "/usr/bin/scontrol"]
    return [b for b in needed if not os.access(b, os.X_OK)]


@dataclass
class SlurmCluster:
    """One running test cluster, started and stopped by scripts/slurm-cluster.sh.

    `env` is what every client needs (SLURM_CONF). With `nodes` > 1 each slurmd runs in its
    own network namespace (see the script); node names are then node1..nodeN.
    """

    root: Path
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    min_job_age: int = 3600  # seconds slurmctld keeps a finished job (then: sacct only)
    nodes: int = 1
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

    @property
    def node_names(self) -> list[str]:
        if self.nodes == 1:
            return [NODE]
        return [f"node{i}" for i in range(1, self.nodes + 1)]

    # --- lifecycle -------------------------------------------------------------------

    def script(self, *argv: str, timeout: float = 120) -> str:
        """Run scripts/slurm-cluster.sh on this cluster's root; its stdout."""
        out = subprocess.run(
            ["bash", str(SCRIPT), *argv, "--root", str(self.root)],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise ClusterError(f"slurm-cluster.sh {' '.join(argv)}: {out.stderr}{out.stdout}")
        return out.stdout

    def start(self, timeout: float = 120) -> None:
        missing = missing_binaries()
        if missing:
            raise ClusterError(f"SLURM is not installed (missing {', '.join(missing)})")
        self.script(
            "up", "--nodes", str(self.nodes), "--cpus", str(self.cpus),
            "--min-job-age", str(self.min_job_age), timeout=timeout,
        )  # fmt: skip

    def start_slurmctld(self, timeout: float = 30) -> None:
        self.script("ctld", "start", timeout=timeout + 10)

    def stop_slurmctld(self) -> None:
        self.script("ctld", "stop")

    def restart_slurmctld(self) -> None:
        self.stop_slurmctld()
        self.start_slurmctld()

    def kill_node(self, name: str) -> None:
        """The node dies: its slurmd and every process of its jobs are killed."""
        self.script("node", "kill", name)

    def start_node(self, name: str) -> None:
        """The node boots again: its slurmd starts and registers (ReturnToService=2)."""
        self.script("node", "start", name)

    def stop(self) -> None:
        self._stop("slurmrestd")
        self.script("down")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        (self.root / "log").mkdir(parents=True, exist_ok=True)
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
        wait_until(sock.exists, timeout, "slurmrestd's socket")
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
        states = [line.rstrip("*") for line in out.stdout.split()]
        return (
            out.returncode == 0
            and len(states) == self.nodes
            and all(state in ("idle", "mixed") for state in states)
        )

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
def running_cluster(
    root: Path | None = None, min_job_age: int = 3600, nodes: int = 1, cpus: int | None = None
) -> Iterator[SlurmCluster]:
    # A short path: unix socket paths are limited to 107 bytes.
    owned = root is None
    path = root or Path(tempfile.mkdtemp(prefix="rlops-slurm-", dir="/tmp"))
    cluster = SlurmCluster(path, min_job_age=min_job_age, nodes=nodes)
    if cpus is not None:
        cluster.cpus = cpus
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if owned and not os.environ.get("RLOPS_KEEP_SLURM"):
            shutil.rmtree(path, ignore_errors=True)
