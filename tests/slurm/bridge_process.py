"""`rlops slurm-bridge` as a real process, for the end-to-end tests that run it beside the
operator: the test bed's Kubernetes API, the real SLURM cluster, run directories and Python
from the test's `SlurmSettings`, and a metrics port of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from rlops.backends.slurm import SlurmSettings
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import ROOT, free_port, terminate
from tests.slurm.slurm_cluster import SlurmCluster


class BridgeProcess:
    """One bridge for `cluster_name`, polling every second, watching one namespace."""

    def __init__(
        self,
        kube: KubeTestBed,
        namespace: str,
        cluster: SlurmCluster,
        slurm: SlurmSettings,
        workdir: Path,
        *,
        cluster_name: str = "hpc",
        bridge_id: str = "login1",
    ) -> None:
        self.run_root = slurm.run_root
        self.log_path = workdir / "bridge.log"
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            **cluster.env,
            "RLOPS_SLURM_PYTHON": slurm.python,
            "RLOPS_BRIDGE_METRICS_HOST": "127.0.0.1",
        }
        self.argv = [
            sys.executable, "-c", "import sys, rlops.cli; sys.exit(rlops.cli.main())",
            "slurm-bridge", "--cluster", cluster_name, "-n", namespace, "--poll-interval", "1",
            "--kubeconfig", str(kube.kubeconfig), "--run-root", str(self.run_root),
            "--bridge-id", bridge_id, "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> BridgeProcess:
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        return self

    def ready(self) -> bool:
        """True once the bridge answers /readyz (a poll has completed); raises if it exited."""
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            if self.process is not None and self.process.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-3000:]
                raise AssertionError(f"the bridge exited:\n{log}") from None
            return False

    def stop(self) -> None:
        terminate(self.process)
