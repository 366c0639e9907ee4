"""Fixtures of the packaging tests: Helm's Go library (in .venv-helm) and chart installs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.packaging.apiserver import serve

CHART = ROOT / "charts" / "rlops"
HELM_PYTHON = ROOT / ".venv-helm" / "bin" / "python"
HELM_DRIVER = Path(__file__).with_name("helm_driver.py")

JSON = dict[str, Any]


def run_helm(*args: str) -> tuple[int, JSON]:
    """Run helm_driver.py with the Python 3.12 venv; its exit code and JSON answer."""
    if not HELM_PYTHON.exists():
        pytest.fail(f"{HELM_PYTHON} is missing: run scripts/setup.sh (it installs helm-sdkpy)")
    proc = subprocess.run(
        [str(HELM_PYTHON), str(HELM_DRIVER), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if not proc.stdout.strip():
        pytest.fail(f"helm_driver.py {args[0]} printed nothing; stderr:\n{proc.stderr}")
    answer: JSON = json.loads(proc.stdout)
    return proc.returncode, answer


def install_chart(tmp: Path, values: JSON, chart: Path = CHART) -> tuple[int, JSON, list[JSON]]:
    """`helm install` the chart into the recording API server: exit code, answer, objects."""
    kubeconfig = tmp / "kubeconfig.yaml"
    with serve(kubeconfig) as api:
        code, answer = run_helm(
            "install",
            str(chart),
            "--release=rlops",
            "--namespace=rlops-system",
            f"--kubeconfig={kubeconfig}",
            f"--values={json.dumps(values)}",
        )
        return code, answer, api.objects()


Installer = Callable[[JSON], list[JSON]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installer:
    """Objects Helm sends for some values; each set of values is installed once per module."""
    cache: dict[str, list[JSON]] = {}

    def install(values: JSON) -> list[JSON]:
        key = json.dumps(values, sort_keys=True)
        if key not in cache:
            code, answer, objects = install_chart(tmp_path_factory.mktemp("helm"), values)
            assert code == 0, answer
            cache[key] = objects
        return cache[key]

    return install
