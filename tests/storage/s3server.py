"""An S3-compatible server on loopback for the object-store tests: moto in server mode.

moto (PyPI, pinned in requirements/moto-server.txt) lives in its own virtualenv .venv-moto
made by scripts/setup.sh: botocore pins python-dateutil < 3, the kubernetes client needs
>= 3. rlops reaches the server through pyarrow.fs, configured by the same variables as any
S3 client (`S3Server.env`): a credential pair, a region and `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.operator.harness import free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
MOTO = ROOT / ".venv-moto" / "bin" / "moto_server"


@dataclass
class S3Server:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """What a client of this server needs in its environment."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "rlops-test",
            "AWS_SECRET_ACCESS_KEY": "rlops-test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(f"{self.url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status

    def filesystem(self) -> Any:
        """A pyarrow S3 filesystem of this server."""
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key="rlops-test", secret_key="rlops-test", region="us-east-1",
            endpoint_override=self.url, scheme="http",
        )  # fmt: skip

    def files(self, prefix: str) -> dict[str, int]:
        """`bucket/prefix/...` files under `prefix` and their sizes."""
        from pyarrow import fs

        selector = fs.FileSelector(prefix, recursive=True, allow_not_found=True)
        infos = self.filesystem().get_file_info(selector)
        return {i.path: i.size for i in infos if i.type == fs.FileType.File}

    def read(self, path: str) -> bytes:
        with self.filesystem().open_input_stream(path) as stream:
            data: bytes = stream.read()
            return data


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def s3_server(workdir: Path) -> Iterator[S3Server]:
    if not MOTO.exists():
        pytest.fail(f"{MOTO} is missing: run scripts/setup.sh (it installs moto's server)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "moto.log").open("wb")
    argv = [str(MOTO), "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while not _up(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"moto's server did not start: {workdir / 'moto.log'}")
            time.sleep(0.2)
        yield S3Server(url, process)
    finally:
        terminate(process)
