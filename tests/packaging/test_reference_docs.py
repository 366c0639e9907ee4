"""docs/reference.md: generated from the models by `rlops docs`, complete, never stale.

Completeness is checked against a second source: every property path of the generated
CRDs' spec and status schemas must have a row, and every row a type and a description.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api import RLExperiment, Sweep
from rlops.api.docsgen import reference_rows, render_reference
from rlops.cli import main as rlops
from tests.conftest import ROOT
from tests.golden import Golden

REFERENCE = ROOT / "docs" / "reference.md"


def schema_paths(node: dict[str, Any], prefix: str) -> Iterator[str]:
    """Every property path of an OpenAPI schema, with `[]` for list items, `<name>` for maps."""
    for name, sub in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        yield path
        yield from schema_paths(sub, path)
    if isinstance(node.get("items"), dict):
        yield from schema_paths(node["items"], f"{prefix}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_paths(node["additionalProperties"], f"{prefix}.<name>")


def crd_field_paths(kind: str) -> set[str]:
    for path in (ROOT / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return {
                p
                for section in ("spec", "status")
                for p in schema_paths(schema["properties"][section], section)
            }
    raise AssertionError(f"no CRD for {kind}")


def test_reference_md_is_what_the_models_give(golden: Golden) -> None:
    golden.check(REFERENCE, render_reference())  # `rlops docs` writes it too


@pytest.mark.parametrize("resource", [RLExperiment, Sweep], ids=lambda r: r.__name__)
def test_every_crd_field_has_a_row(resource: Any) -> None:
    documented = {row.path for row in reference_rows(resource)}
    missing = crd_field_paths(resource.__name__) - documented
    assert missing == set()


@pytest.mark.parametrize("resource", [RLExperiment, Sweep], ids=lambda r: r.__name__)
def test_every_row_has_a_type_default_and_description(resource: Any) -> None:
    rows = reference_rows(resource)
    assert [r.path for r in rows if r.type == "any" or not r.description or not r.default] == []


def test_spec_fields_show_their_defaults() -> None:
    rows = {row.path: row for row in reference_rows(Sweep)}
    assert rows["spec.algorithm"].default == "`grid`"
    assert rows["spec.parallelism"].default == "`1`"
    assert rows["spec.template"].default == "required"
    assert rows["spec.placement.burstAfterSeconds"].type == "integer"
    assert "`burst`" in rows["spec.placement.backend"].type


def test_docs_check_fails_on_a_stale_file_and_passes_once_written(tmp_path: Path) -> None:
    target = tmp_path / "reference.md"
    target.write_text("# stale\n")
    assert rlops(["docs", "--check", "-o", str(target)]) == 1
    assert rlops(["docs", "-o", str(target)]) == 0
    assert rlops(["docs", "--check", "-o", str(target)]) == 0
