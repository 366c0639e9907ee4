"""A Google Cloud Storage emulator on loopback for the gs:// storage tests.

gcp-storage-emulator (PyPI, pinned in requirements/gcs-server.txt) lives in its own
virtualenv .venv-gcs made by scripts/setup.sh. rlops reaches it through pyarrow's
GcsFileSystem, pointed at it by `STORAGE_EMULATOR_HOST` (`GcsServer.env`), with anonymous
credentials (rlops.runtime.storage.filesystem).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.storage.servers import StoreServer, serving

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / ".venv-gcs" / "bin" / "gcp-storage-emulator"


class GcsServer(StoreServer):
    """gcp-storage-emulator's GCS server."""

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


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/storage/v1/b?project=rlops-test", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _argv(port: int) -> list[str]:
    return ["start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]


@contextmanager
def gcs_server(workdir: Path) -> Iterator[GcsServer]:
    with serving(EMULATOR, _argv, _up, workdir / "gcs.log") as (url, process):
        yield GcsServer(url, process)
