"""Fixtures of the container tests: the image (built or found up to date by
scripts/build-image.sh), podman's settings (skipped, with the reason, without podman),
`cluster`, the real SLURM cluster of tests/runner/test_slurm_run.py, and `s3`/`bucket`, moto's
S3 server of tests/storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.podman import build_image, podman_settings_or_skip
from tests.runner.test_slurm_run import cluster  # noqa: F401 (a real SLURM cluster per module)
from tests.storage.conftest import bucket, s3  # noqa: F401 (moto's S3 server, a bucket)


@pytest.fixture(scope="session")
def podman_settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return podman_settings_or_skip(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="session")
def image(podman_settings: dict[str, str]) -> Iterator[str]:
    yield build_image()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory the image's user (10001) may write to."""
    path = tmp_path / "run"
    path.mkdir()
    path.chmod(0o777)
    return path
