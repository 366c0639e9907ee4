"""A whole manifest: its kind, apiVersion and shape, then the spec of its kind."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from rlops.api.base import API_VERSION
from rlops.api.catalog import Catalog, load_catalog
from rlops.api.experiment import RLExperiment
from rlops.api.sweep import Sweep
from rlops.api.validation.errors import FieldError, check_name, pydantic_errors
from rlops.api.validation.experiment import validate_experiment_spec
from rlops.api.validation.shared import check_shared_experiment, check_shared_sweep
from rlops.api.validation.sweep import validate_sweep_spec

KINDS = ("RLExperiment", "Sweep")


MAX_EXPERIMENT_NAME = 47


MAX_SWEEP_NAME = 36


def validate_manifest(obj: Any, catalog: Catalog | None = None) -> list[FieldError]:
    """Every error in one RLExperiment or Sweep manifest (empty when it is valid)."""
    if not isinstance(obj, dict):
        return [FieldError("", f"a manifest must be a mapping, not {type(obj).__name__}")]
    kind = obj.get("kind")
    errors: list[FieldError] = []
    if kind not in KINDS:
        return [FieldError("kind", f"{kind!r} is not a kind of rlops; allowed: {', '.join(KINDS)}")]
    if obj.get("apiVersion") != API_VERSION:
        errors.append(
            FieldError("apiVersion", f"{obj.get('apiVersion')!r}; allowed: {API_VERSION}")
        )
    model = RLExperiment if kind == "RLExperiment" else Sweep
    body: dict[str, Any] = copy.deepcopy({k: v for k, v in obj.items() if k != "status"})
    parsed: RLExperiment | Sweep | None = None
    # Report the shape errors, then drop the offending fields and parse again, so the
    # semantic checks still report everything else at once.
    for _ in range(10):
        try:
            parsed = model.model_validate(body)
            break
        except ValidationError as exc:
            errors += pydantic_errors(exc)
            if not _drop_error_locations(body, exc):
                break
    if parsed is None:
        return _unique(errors)

    catalog = catalog or load_catalog()
    name = parsed.metadata.name
    if not name:
        errors.append(FieldError("metadata.name", "a name is required"))
    else:
        limit = MAX_EXPERIMENT_NAME if kind == "RLExperiment" else MAX_SWEEP_NAME
        errors += check_name("metadata.name", name, limit)
    if isinstance(parsed, RLExperiment):
        errors += validate_experiment_spec(parsed.spec, "spec", catalog)
        errors += check_shared_experiment(parsed, "spec")
    else:
        errors += validate_sweep_spec(parsed.spec, "spec", catalog)
        errors += check_shared_sweep(parsed.spec, "spec")
    return _unique(errors)


def _unique(errors: list[FieldError]) -> list[FieldError]:
    return list(dict.fromkeys(errors))


def _drop_error_locations(body: dict[str, Any], exc: ValidationError) -> bool:
    """Remove the fields pydantic rejected; False when nothing could be removed."""
    removed = False
    for err in exc.errors():
        loc = [p for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-")]
        if not loc or err["type"] == "missing":
            continue
        node: Any = body
        for part in loc[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        last = loc[-1]
        if isinstance(node, dict) and last in node:
            del node[last]
            removed = True
        elif isinstance(node, list) and isinstance(last, int) and last < len(node):
            node[last] = None
            removed = True
    return removed
