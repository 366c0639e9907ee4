"""Fixtures of the bursting tests: the real SLURM cluster of tests/slurm beside the Kubernetes
test bed (`kube`, `kube_namespace`, `kuberay` come from tests/conftest.py)."""

from __future__ import annotations

from tests.slurm.conftest import slurm_cluster, slurm_settings  # noqa: F401
