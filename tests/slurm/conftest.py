"""Fixtures of the SLURM tests: one real cluster per session (munged, slurmctld, slurmd).

Tests that need it are marked `slurm`; they are skipped with the reason when the SLURM
binaries are missing or the tests do not run as root (the daemons run as root here).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlops.backends.slurm import CliSlurmClient, SlurmSettings
from tests.slurm.slurm_cluster import SlurmCluster, missing_binaries, running_cluster

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed: {', '.join(missing)} (scripts/setup.sh)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons run as root")
    with running_cluster() as cluster:
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(cluster.conf)
        try:
            yield cluster
        finally:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous


@pytest.fixture
def slurm_settings(slurm_cluster: SlurmCluster, tmp_path: Path) -> SlurmSettings:
    # Run directories under /tmp: short, and free of characters directives reject.
    run_root = Path(os.path.realpath(slurm_cluster.root)) / "runs" / tmp_path.name
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else "python3")
    return SlurmSettings(run_root=run_root, python=python, backoff_seconds=0.5, retries=20)


@pytest.fixture
def cli_client(slurm_settings: SlurmSettings, slurm_cluster: SlurmCluster) -> CliSlurmClient:
    return CliSlurmClient(slurm_settings, env=slurm_cluster.env)
