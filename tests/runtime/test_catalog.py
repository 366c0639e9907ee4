"""The committed RLlib catalog (what Ray-free validation checks against) matches the
installed RLlib: regenerate it with `python -m rlops.runtime.catalog` when this fails."""

from __future__ import annotations

import json

from rlops.api.catalog import CATALOG_FILE
from rlops.runtime.catalog import build_catalog
from tests.conftest import ROOT


def test_the_committed_catalog_matches_the_installed_rllib() -> None:
    committed = json.loads((ROOT / "rlops" / "api" / CATALOG_FILE).read_text())
    regenerated = json.loads(json.dumps(build_catalog()))
    assert regenerated["ray_version"] == committed["ray_version"]
    assert sorted(regenerated["algorithms"]) == sorted(committed["algorithms"])
    for name, groups in regenerated["algorithms"].items():
        assert groups == committed["algorithms"][name], f"{name}: catalog drift"
