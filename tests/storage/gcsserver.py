"""A Google Cloud Storage emulator on loopback for the gs:// storage tests.

gcp-storage-emulator (PyPI, pinned in requirements/gcs-server.txt) lives in its own
virtualenv .venv-gcs made by scripts/setup.sh. rlops reaches it through pyarrow's
GcsFileSystem, pointed at it by `STORAGE_EMULATOR_HOST` (`GcsServer.env`), with anonymous
credentials (rlops.runtime.storage.filesystem).
"""

from __future__ import annotations

import json
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
EMULATOR = ROOT / ".venv-gcs" / "bin" / "gcp-storage-emulator"


@dataclass
class GcsServer:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """What a client of this server needs in its environment."""
        return {"STORAGE_EMULATOR_HOST": self.url}

    def create_bucket(self, name: str) -> None:
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=rlops-test", data=body, method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.status

    def filesystem(self) -> Any:
        """A pyarrow GCS filesystem of this server."""
        from pyarrow import fs

        host = self.url.removeprefix("http://")
        return fs.GcsFileSystem(anonymous=True, endpoint_override=host, scheme="http")

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
        with urllib.request.urlopen(f"{url}/storage/v1/b?project=rlops-test", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextmanager
def gcs_server(workdir: Path) -> Iterator[GcsServer]:
    if not EMULATOR.exists():
        pytest.fail(f"{EMULATOR} is missing: run scripts/setup.sh (it installs the emulator)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "gcs.log").open("wb")
    argv = [str(EMULATOR), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        while not _up(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the GCS emulator did not start: {workdir / 'gcs.log'}")
            time.sleep(0.2)
        yield GcsServer(url, process)
    finally:
        terminate(process)
