"""An S3-compatible server on loopback for the object-store tests: moto in server mode.

moto (PyPI, pinned in requirements/moto-server.txt) lives in its own virtualenv .venv-moto
made by scripts/setup.sh: botocore pins python-dateutil < 3, the kubernetes client needs
>= 3. rlops reaches the server through pyarrow.fs, configured by the same variables as any
S3 client (`S3Server.env`): a credential pair, a region and `AWS_ENDPOINT_URL`.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.storage.servers import StoreServer, serving

ROOT = Path(__file__).resolve().parents[2]
MOTO = ROOT / ".venv-moto" / "bin" / "moto_server"


class S3Server(StoreServer):
    """moto's S3 server."""

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


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _argv(port: int) -> list[str]:
    return ["-H", "127.0.0.1", "-p", str(port)]


@contextmanager
def s3_server(workdir: Path) -> Iterator[S3Server]:
    with serving(MOTO, _argv, _up, workdir / "moto.log") as (url, process):
        yield S3Server(url, process)
