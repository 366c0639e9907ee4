"""podman for the tests: where it is, the settings this machine needs, and the image.

podman reads its engine settings from CONTAINERS_CONF: the tests write one that asks for
runc with cgroupfs, and for open-file and process limits no higher than this process's own
(a container may not raise them here; podman's defaults would). Every podman the tests
start, directly or from a SLURM job, gets this environment.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

PODMAN = shutil.which("podman")
BUILD_SCRIPT = ROOT / "scripts" / "build-image.sh"
# The image's own interpreter: result.json's runtime.python when a run trained in the image.
IMAGE_PYTHON = "/opt/rlops/bin/python"
IMAGE_UID = 10001
NPROC_CAP = 32768


def containers_conf(directory: Path) -> Path:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], NPROC_CAP)
    conf = directory / "containers.conf"
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
    )
    return conf


def podman_env(directory: Path) -> dict[str, str]:
    """This environment with CONTAINERS_CONF pointing at the tests' settings."""
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf(directory))}


def podman_settings_or_skip(directory: Path) -> dict[str, str]:
    """podman_env, or a skip naming why when podman is not installed."""
    if PODMAN is None:
        pytest.skip("podman is not installed (scripts/build-image.sh installs it)")
    return podman_env(directory)


def build_image(timeout: float = 1800) -> str:
    """scripts/build-image.sh (a no-op when the image is up to date): the image reference."""
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(f"build-image.sh exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]
