"""Fixtures of the container tests: the image (built or found up to date by
scripts/build-image.sh), podman's settings (skipped, with the reason, without podman),
`cluster`, the real SLURM cluster of tests/runner/test_slurm_run.py, `s3`/`bucket`, moto's
S3 server of tests/storage, and `pod_operator`: `rlops operator` configured with the image
and a storage claim, with the KubeRay stand-in running the namespace's Ray pods as
containers (the claim backed by the operator's storage directory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.containers.podman import build_image, podman_settings_or_skip
from tests.kube.fixtures import KubeTestBed
from tests.kube.pod_containers import PodmanPods
from tests.kube.volume_claims import claim
from tests.operator.harness import OperatorProcess
from tests.operator.test_operator_e2e import apply
from tests.runner.test_slurm_run import cluster  # noqa: F401 (a real SLURM cluster per module)
from tests.storage.conftest import bucket, s3  # noqa: F401 (moto's S3 server, a bucket)

CLAIM = "rlops-runs"


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


@pytest.fixture
def pod_operator(
    kube: KubeTestBed,
    kube_namespace: str,
    kuberay: Any,
    image: str,
    podman_settings: dict[str, str],
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    if not getattr(kuberay, "emulated", False):
        pytest.skip("container mode is the stand-in's (a real cluster runs real pods)")
    process = OperatorProcess(kube, kube_namespace, tmp_path, image=image, storage_claim=CLAIM)
    pods = PodmanPods(podman_settings, tmp_path / "pods", claims={CLAIM: process.workdir / "runs"})
    kuberay.run_in_containers(kube_namespace, pods)
    apply(kube, kube_namespace, claim(CLAIM))
    try:
        yield process.start()
    finally:
        kuberay.run_in_containers(kube_namespace, None)
        process.stop()
