"""A real MLflow tracking server on loopback, for the tracking tests.

The server (PyPI `mlflow`, pinned in requirements/mlflow-server.txt) lives in its own
virtualenv .venv-mlflow made by scripts/setup.sh: its dependencies (pyarrow < 26) clash
with Ray's, while rlops itself needs only the client, `mlflow-skinny`, in .venv.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.operator.harness import free_port, terminate
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
MLFLOW = ROOT / ".venv-mlflow" / "bin" / "mlflow"


@dataclass
class MlflowServer:
    url: str
    workdir: Path
    process: subprocess.Popen[bytes]

    def client(self):  # type: ignore[no-untyped-def]
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.url)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    if not MLFLOW.exists():
        pytest.fail(f"{MLFLOW} is missing: run scripts/setup.sh (it installs the MLflow server)")
    workdir = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
        "--default-artifact-root", str(workdir / "artifacts"),
    ]  # fmt: skip
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(argv, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            up = lambda: healthy(url) or process.poll() is not None  # noqa: E731
            wait_until(up, 300, "MLflow")  # minutes on a loaded machine
            assert process.poll() is None, "the MLflow server exited"
        except AssertionError as exc:
            text = (workdir / "server.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"the MLflow server did not come up ({exc}):\n{text}") from None
        yield MlflowServer(url, workdir, process)
    finally:
        terminate(process)
