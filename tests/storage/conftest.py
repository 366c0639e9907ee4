"""The S3 server of the storage tests, one per session, with a fresh bucket per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

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
