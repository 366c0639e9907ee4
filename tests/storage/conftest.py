"""The object-store servers of the storage tests (moto's S3, the GCS emulator), one each per
session, with a fresh bucket per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.storage.gcsserver import GcsServer, gcs_server
from tests.storage.s3server import S3Server, s3_server

_buckets = itertools.count()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket; the test's environment points S3 clients at the server."""
    name = f"runs-{next(_buckets)}"
    s3.create_bucket(name)
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return name


@pytest.fixture(scope="session")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    with gcs_server(tmp_path_factory.mktemp("gcs")) as server:
        yield server


@dataclass
class Bucket:
    """A new bucket in one of the test stores: `uri(path)` names a run directory in it; the
    server reads back what the store holds (`files`, `read`, `filesystem`)."""

    scheme: str
    name: str
    server: S3Server | GcsServer

    def uri(self, path: str) -> str:
        return f"{self.scheme}://{self.name}/{path}"


@pytest.fixture(params=["s3", "gs"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A new bucket in moto's S3 server (s3://) or the GCS emulator (gs://); the test's
    environment points clients at its server."""
    server: S3Server | GcsServer = request.getfixturevalue("s3" if request.param == "s3" else "gcs")
    name = f"runs-{next(_buckets)}"
    server.create_bucket(name)
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    return Bucket(request.param, name, server)
