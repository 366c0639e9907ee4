"""Shared fixtures: paths of the repository, golden files, the Kubernetes test bed."""

from __future__ import annotations

import os
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
from tests.xdist import worker_index  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker's multi-node SLURM clusters get network namespaces,
    a bridge and a subnet of their own (scripts/slurm-cluster.sh reads these)."""
    index = worker_index()
    if index is not None:
        os.environ.setdefault("RLOPS_SLURM_NET_PREFIX", f"rw{index}-")
        os.environ.setdefault("RLOPS_SLURM_SUBNET", f"10.217.{10 + index}")


# The heaviest kinds of test first, so that under pytest-xdist the long container and
# cluster files start early and the many quick files fill in around them (a file's weight
# is its heaviest test's; .ci/run passes --no-loadscope-reorder, else xdist hands out the
# files with the most tests first).
_WEIGHT = {"containers": 3, "slurm": 2, "e2e": 2, "training": 1}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    weight: dict[Path, int] = {}
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        here = max((_WEIGHT.get(name, 0) for name in marks), default=0)
        weight[item.path] = max(weight.get(item.path, 0), here)
    order = {path: index for index, path in enumerate(weight)}
    items.sort(key=lambda item: (-weight[item.path], order[item.path]))
