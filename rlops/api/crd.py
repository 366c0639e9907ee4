"""CustomResourceDefinitions generated from the pydantic models — the only source of the CRDs.

Kubernetes wants a *structural* OpenAPI v3 schema: no `$ref`, a `type` on every node
(unless it preserves unknown fields), no `additionalProperties` beside `properties`,
no `const`. This module turns pydantic's JSON Schema into that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rlops.api.base import GROUP, VERSION
from rlops.api.crd_rules import add_rules
from rlops.api.experiment import RLExperiment
from rlops.api.sweep import Sweep

JSON = dict[str, Any]

_DROPPED_KEYS = {"title", "default", "examples", "discriminator"}


def _resolve(node: Any, defs: JSON) -> Any:
    """Inline every `$ref` and make the node structural."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    if "anyOf" in node:
        options = [opt for opt in node["anyOf"] if opt.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            union: JSON = _resolve({**options[0], **rest}, defs)
        else:
            # A union of several shapes: keep what the user wrote, validate in the operator.
            union = {**_resolve(rest, defs), "x-kubernetes-preserve-unknown-fields": True}
        if nullable:
            union["nullable"] = True
        return union

    out: JSON = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key == "$defs":
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "x-kubernetes-validations":
            out[key] = value  # CEL rules, as they are
        elif key == "properties":
            out["properties"] = {name: _resolve(sub, defs) for name, sub in value.items()}
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = _resolve(value, defs)
            # `false` (extra="forbid") has no structural form: the API server prunes and
            # kubectl's strict field validation reports unknown fields instead.
        else:
            out[key] = _resolve(value, defs)

    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    if out.get("type") == "object" and "properties" in out and "additionalProperties" in out:
        del out["additionalProperties"]
    if "type" not in out and "enum" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if (
        out.get("type") == "object"
        and not out.get("properties")
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def structural_schema(model: type[BaseModel]) -> JSON:
    """The openAPIV3Schema of a resource model (metadata left to the API server)."""
    raw = add_rules(model.__name__, model.model_json_schema(by_alias=True, mode="validation"))
    schema: JSON = _resolve(raw, raw.get("$defs", {}))
    schema["properties"]["metadata"] = {"type": "object"}
    schema["required"] = ["spec"]
    return schema


def _column(name: str, type_: str, path: str, description: str, priority: int = 0) -> JSON:
    col: JSON = {"name": name, "type": type_, "jsonPath": path, "description": description}
    if priority:
        col["priority"] = priority
    return col


_AGE = _column("Age", "date", ".metadata.creationTimestamp", "Time since creation.")

RESOURCES: dict[str, tuple[type[BaseModel], str, str, list[JSON]]] = {
    "RLExperiment": (
        RLExperiment,
        "rlexperiments",
        "rlx",
        [
            _column("Phase", "string", ".status.phase", "Where the experiment is."),
            _column("Backend", "string", ".status.backend", "Where it runs."),
            _column("Return", "number", ".status.progress.episodeReturnMean", "Mean return."),
            _column("Timesteps", "integer", ".status.progress.timesteps", "Env steps sampled."),
            _AGE,
        ],
    ),
    "Sweep": (
        Sweep,
        "sweeps",
        "sw",
        [
            _column("Phase", "string", ".status.phase", "Where the sweep is."),
            _column("Trials", "integer", ".status.trials.total", "Trials created."),
            _column("Running", "integer", ".status.trials.running", "Trials running."),
            _column("Succeeded", "integer", ".status.trials.succeeded", "Trials succeeded."),
            _column("Best", "number", ".status.bestTrial.objective", "Best objective."),
            _column("Best-Trial", "string", ".status.bestTrial.name", "Best trial.", priority=1),
            _AGE,
        ],
    ),
}


def crd(kind: str) -> JSON:
    """The CustomResourceDefinition of one kind."""
    model, plural, short, columns = RESOURCES[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["rlops"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": structural_schema(model)},
                }
            ],
        },
    }


def render_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD, as `crds/` holds them."""
    out = {}
    for kind, (_, plural, _, _) in RESOURCES.items():
        text = yaml.safe_dump(crd(kind), sort_keys=False, width=100)
        out[f"{GROUP}_{plural}.yaml"] = (
            "# Generated by `rlops crds` from rlops.api. Do not edit.\n" + text
        )
    return out


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_crds().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
