"""The CRDs in crds/ are exactly what the models generate, and they are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rlops.api.crd import render_crds

ROOT = Path(__file__).resolve().parents[2]


def test_crds_match_the_models() -> None:
    generated = render_crds()
    on_disk = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert on_disk == generated, "crds/ drifted from rlops.api: run `rlops crds`"


def _walk(node: dict[str, Any], path: str = "") -> list[str]:
    problems = []
    if "$ref" in node or "const" in node or ("anyOf" in node and "type" in node):
        problems.append(f"{path}: not structural ({sorted(node)})")
    if "type" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        problems.append(f"{path}: properties beside additionalProperties")
    for name, sub in node.get("properties", {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}{{}}")
    return problems


def test_schemas_are_structural_and_documented() -> None:
    for text in render_crds().values():
        crd = yaml.safe_load(text)
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        assert _walk(schema) == []
        spec = schema["properties"]["spec"]
        undocumented = [k for k, v in spec["properties"].items() if not v.get("description")]
        assert undocumented == []
        assert version["subresources"] == {"status": {}}
        names = crd["spec"]["names"]
        assert names["categories"] == ["rlops"]
        assert names["shortNames"][0] in ("rlx", "sw")


def test_experiment_printer_columns() -> None:
    crd = yaml.safe_load(render_crds()["rlops.dev_rlexperiments.yaml"])
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Phase", "Backend", "Return", "Timesteps", "Age"]
