"""The CRD copies in the Helm chart and the kustomize base are the generated crds/, byte for byte.

scripts/sync-chart-crds.sh makes the copies; its --check mode must agree with this test.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("copy", ["charts/rlops/crds", "manifests/base/crds"])
def test_crd_copies_are_the_generated_crds_byte_for_byte(copy: str) -> None:
    generated = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    copied = {p.name: p.read_bytes() for p in (ROOT / copy).glob("*.yaml")}
    assert copied.keys() == generated.keys(), "run scripts/sync-chart-crds.sh"
    drifted = [name for name in generated if copied[name] != generated[name]]
    assert drifted == [], f"{copy} drifted from crds/: run scripts/sync-chart-crds.sh"


def test_sync_script_check_mode_agrees() -> None:
    proc = subprocess.run(
        ["bash", "scripts/sync-chart-crds.sh", "--check"], cwd=ROOT, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
