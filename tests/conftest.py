"""Shared fixtures: paths of the repository and fluent manifest builders."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KUBERAY_CRDS = ROOT / "third_party" / "kuberay"  # vendored, with its NOTICE
EXAMPLES = ROOT / "manifests" / "examples"


@pytest.fixture
def root() -> Path:
    return ROOT


# The Kubernetes test bed (API server emulator, KubeRay stand-in): see docs/testing.md.
from tests.kube.fixtures import kube, kube_namespace, kuberay  # noqa: E402, F401
from tests.operator.harness import operator  # noqa: E402, F401
