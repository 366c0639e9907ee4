"""Shared fixtures: paths of the repository, golden files, the Kubernetes test bed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import Golden, add_option, golden_of

ROOT = Path(__file__).resolve().parents[1]
KUBERAY_CRDS = ROOT / "third_party" / "kuberay"  # vendored, with its NOTICE
EXAMPLES = ROOT / "manifests" / "examples"


@pytest.fixture
def root() -> Path:
    return ROOT


def pytest_addoption(parser: pytest.Parser) -> None:
    add_option(parser)


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    """`golden.check(path, text)`: text equals its golden file (`--update-golden` rewrites)."""
    return golden_of(request.config)


# The Kubernetes test bed (API server emulator, KubeRay stand-in): see docs/testing.md.
from tests.kube.fixtures import kube, kube_namespace, kuberay  # noqa: E402, F401
from tests.operator.harness import operator  # noqa: E402, F401
