"""Running `rlops operator` as a process against the test bed, and waiting on conditions."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.builders import TABULAR_Q
from tests.kube.fixtures import KubeTestBed
from tests.waiting import wait_until

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OperatorProcess:
    """One `rlops operator` replica serving one namespace of the test bed."""

    def __init__(
        self, kube: KubeTestBed, namespace: str, workdir: Path, priority: int | None = None,
        **settings: Any,
    ) -> None:  # fmt: skip
        self.kube = kube
        self.namespace = namespace
        self.workdir = workdir
        self.priority = priority
        self.progress_port = free_port()
        self.metrics_port = free_port()
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kube.kubeconfig),
            "RLOPS_SECRET": SECRET,
            "RLOPS_PROGRESS_URL": f"http://127.0.0.1:{self.progress_port}",
            "RLOPS_PROGRESS_PORT": str(self.progress_port),
            "RLOPS_METRICS_PORT": str(self.metrics_port),
            "RLOPS_HOST": "127.0.0.1",
            "RLOPS_STORAGE_PATH": str(workdir / "runs"),
            "RLOPS_STATUS_FLUSH_SECONDS": "2",
            "RLOPS_RESYNC_SECONDS": "5",
            "RLOPS_PEERING_LIFETIME_SECONDS": "10",
            **{f"RLOPS_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.extra_args: list[str] = []  # e.g. ["--log-format", "json"]

    @property
    def log_path(self) -> Path:
        return self.workdir / f"operator-{self.metrics_port}-{self.starts}.log"

    def start(self) -> OperatorProcess:
        self.starts += 1
        argv = [
            sys.executable,
            "-c",
            "import sys, rlops.cli; sys.exit(rlops.cli.main())",
            "operator",
            "-n",
            self.namespace,
            "-v",
        ]
        if self.priority is not None:
            argv += ["--priority", str(self.priority)]
        argv += self.extra_args
        self.process = subprocess.Popen(
            argv, env=self.env, cwd=ROOT, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT
        )
        wait_until(self.healthy, 60, "the operator to serve /healthz")
        return self

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=2):
                return True
        except OSError:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the operator exited:\n{self.log()[-3000:]}") from None
            return False

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            return str(r.read().decode())

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a crashed pod."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        terminate(self.process)

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.workdir.glob("operator-*.log"))
        )


@pytest.fixture
def operator(kube: KubeTestBed, kube_namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """`rlops operator` as a real process against the test bed, stopped after the test."""
    process = OperatorProcess(kube, kube_namespace, tmp_path)
    try:
        yield process.start()
    finally:
        process.stop()


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a process that is still running, SIGKILL it after 30 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def get(kube: KubeTestBed, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    out = kube.kubectl("get", kind, name, "-n", namespace, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def status_of(kube: KubeTestBed, kind: str, namespace: str, name: str) -> dict[str, Any]:
    body = get(kube, kind, namespace, name)
    return (body or {}).get("status") or {}


def names(kube: KubeTestBed, kind: str, namespace: str, selector: str = "") -> list[str]:
    args = ["get", kind, "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}"]
    if selector:
        args += ["-l", selector]
    out = kube.kubectl(*args, check=True)
    return sorted(out.stdout.split())


def kubernetes_command_sweep() -> dict[str, Any]:
    """manifests/examples/command-sweep.yaml placed on Kubernetes, one seed per trial, its
    program (tabular Q-learning) at an absolute path as an image would hold it."""
    sweep: dict[str, Any] = yaml.safe_load(
        (ROOT / "manifests" / "examples" / "command-sweep.yaml").read_text()
    )
    template = sweep["spec"]["template"]
    template["command"] = ["python", str(ROOT / TABULAR_Q)]
    template["placement"] = {"backend": "kubernetes"}
    sweep["spec"]["seedsPerTrial"] = 1
    return sweep
