"""Every example in manifests/examples passes `rlops validate` and the generated CRD schema.

The examples are applied with the real kubectl into the Kubernetes test bed (the API
emulator of tests/kube, which validates against the CRDs, or a configured cluster).
The CRD schema is also checked here directly, as the API server does with strict field
validation: each body is validated (jsonschema) against the CRD's openAPIV3Schema, with
OpenAPI's `nullable` turned into JSON Schema type lists and unknown fields reported
wherever the schema lists its properties and does not preserve unknown fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rlops.cli import main as rlops
from tests.conftest import EXAMPLES, ROOT
from tests.kube.fixtures import KubeTestBed

JSON = dict[str, Any]

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def to_json_schema(node: Any) -> Any:
    """An OpenAPI v3 structural schema as JSON Schema, strict about unknown fields."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    preserves = node.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in node and "additionalProperties" not in node and not preserves:
        out["additionalProperties"] = False
    return out


def crd_schemas() -> dict[str, JSON]:
    schemas = {}
    for path in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        (version,) = crd["spec"]["versions"]
        kind = crd["spec"]["names"]["kind"]
        schemas[kind] = to_json_schema(version["schema"]["openAPIV3Schema"])
    return schemas


SCHEMAS = crd_schemas()


def test_there_are_examples_of_both_kinds_and_every_backend() -> None:
    docs = [yaml.safe_load(p.read_text()) for p in EXAMPLE_FILES]
    assert {d["kind"] for d in docs} == {"RLExperiment", "Sweep"}
    backends = {
        (d["spec"].get("placement") or {}).get("backend", "local")
        for d in docs
        if d["kind"] == "RLExperiment"
    } | {d["spec"].get("placement", {}).get("backend") for d in docs if d["kind"] == "Sweep"}
    assert {"kubernetes", "burst"} <= backends


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_passes_rlops_validate(path: Path) -> None:
    assert rlops(["validate", str(path)]) == 0


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.name for p in EXAMPLE_FILES])
def test_example_matches_the_crd_schema(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        validator = jsonschema.Draft202012Validator(SCHEMAS[doc["kind"]])
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []


def test_examples_apply_to_the_kubernetes_api(kube: KubeTestBed, kube_namespace: str) -> None:
    """The real kubectl into the test bed's API (the emulator, or a configured cluster)."""
    expected = set()
    for path in EXAMPLE_FILES:
        proc = kube.kubectl("apply", "-n", kube_namespace, "-f", str(path))
        assert proc.returncode == 0, proc.stderr
        for doc in yaml.safe_load_all(path.read_text()):
            expected.add(f"{doc['kind'].lower()}.rlops.dev/{doc['metadata']['name']}")
    listed = kube.kubectl("get", "rlexperiments,sweeps", "-n", kube_namespace, "-o", "name")
    assert set(listed.stdout.split()) == expected


def test_crd_schema_check_catches_unknown_and_mistyped_fields() -> None:
    doc = yaml.safe_load((EXAMPLES / "burst-sweep.yaml").read_text())
    doc["spec"]["placement"]["burstAfterSecs"] = 120
    doc["spec"]["placement"]["kubernetes"]["maxParallel"] = "two"
    validator = jsonschema.Draft202012Validator(SCHEMAS["Sweep"])
    messages = sorted(e.message for e in validator.iter_errors(doc))
    assert len(messages) == 2
    assert any("burstAfterSecs" in m for m in messages)
    assert any("'two' is not of type" in m for m in messages)


def test_burst_example_is_the_documented_one() -> None:
    placement = yaml.safe_load((EXAMPLES / "burst-sweep.yaml").read_text())["spec"]["placement"]
    assert placement["backend"] == "burst"
    assert placement["kubernetes"]["maxParallel"] == 2
    assert placement["slurm"]["cluster"] == "hpc"
    assert placement["burstAfterSeconds"] == 120
