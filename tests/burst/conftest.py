"""Fixtures of the bursting tests: the real SLURM cluster of tests/slurm beside the Kubernetes
test bed (`kube`, `kube_namespace`, `kuberay` come from tests/conftest.py)."""

from __future__ import annotations

from tests.slurm.conftest import VENV_PYTHON, slurm_cluster  # noqa: F401

__all__ = ["VENV_PYTHON"]
