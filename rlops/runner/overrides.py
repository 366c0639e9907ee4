"""Command-line overrides, Hydra style: `--set key=value` fixes, `--set key=a,b` sweeps.

Keys are dotted paths into the manifest; list elements are addressed by index
(`config.rl_module.model_config.fcnet_hiddens.0`). A key that does not start at the
manifest's top (`apiVersion`, `kind`, `metadata`, `spec`) is read under `spec`. Values
are parsed as YAML (`0.9` is a float, `[64,64]` a list, `true` a bool). A comma list
outside brackets and quotes is a sweep: on a Sweep it adds a grid parameter for a
`template.` path; on an RLExperiment it turns the manifest into a Sweep whose template
is the experiment's spec.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from rlops.api import RLExperimentSpec, SweepSpec

TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
_EXPERIMENT_FIELDS = {f.alias or n for n, f in RLExperimentSpec.model_fields.items()} | set(
    RLExperimentSpec.model_fields
)
_SWEEP_FIELDS = {f.alias or n for n, f in SweepSpec.model_fields.items()} | set(
    SweepSpec.model_fields
)


class OverrideError(ValueError):
    """An override that cannot be read or applied; the message names the key."""


@dataclass(frozen=True)
class Override:
    """One `--set`: a path and either one value or, for a sweep, several."""

    path: tuple[str, ...]
    values: tuple[Any, ...]
    sweep: bool

    @property
    def key(self) -> str:
        return ".".join(self.path)


def parse_override(text: str) -> Override:
    """`a.b.c=value` or `a.b.c=v1,v2` (a sweep)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OverrideError(f"{text!r}: write KEY=VALUE or KEY=V1,V2 (a dotted KEY)")
    path = tuple(key.split("."))
    if not all(path):
        raise OverrideError(f"{key!r}: not a dotted path (an empty part between dots)")
    parts = split_top_level(raw)
    try:
        values = tuple(_parse_value(p) for p in parts)
    except yaml.YAMLError as exc:
        raise OverrideError(f"{key}: {raw!r} is not a YAML value: {exc}") from exc
    return Override(path, values, sweep=len(parts) > 1)


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text) if text.strip() else ""


def split_top_level(text: str) -> list[str]:
    """Split on commas that are outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def apply_overrides(manifest: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """The manifest with every override applied (a new mapping; the input is unchanged)."""
    overrides = [parse_override(t) for t in texts]
    out = copy.deepcopy(manifest)
    if out.get("kind") == "RLExperiment" and any(o.sweep for o in overrides):
        out = experiment_to_sweep(out)
        overrides = [_to_sweep_path(o) for o in overrides]
    for override in overrides:
        path = _rooted(override.path)
        if override.sweep:
            _add_grid(out, override, path)
        else:
            _fix(out, override, path)
    return out


def experiment_to_sweep(manifest: dict[str, Any]) -> dict[str, Any]:
    """A Sweep with the experiment's spec as template and no parameters yet."""
    return {
        "apiVersion": manifest.get("apiVersion"),
        "kind": "Sweep",
        "metadata": copy.deepcopy(manifest.get("metadata") or {}),
        "spec": {
            "template": copy.deepcopy(manifest.get("spec") or {}),
            "parameters": {},
            "algorithm": "grid",
        },
    }


def _to_sweep_path(override: Override) -> Override:
    """Experiment paths (`spec.config...`) point into the template once it is a Sweep."""
    path = override.path[1:] if override.path[0] == "spec" else override.path
    if path and path[0] in TOP_LEVEL:
        return override
    if path and path[0] in _EXPERIMENT_FIELDS:
        return Override(("spec", "template", *path), override.values, override.sweep)
    if path and path[0] in _SWEEP_FIELDS:
        return Override(("spec", *path), override.values, override.sweep)
    return override


def _rooted(path: tuple[str, ...]) -> tuple[str, ...]:
    return path if path[0] in TOP_LEVEL else ("spec", *path)


def _add_grid(manifest: dict[str, Any], override: Override, path: tuple[str, ...]) -> None:
    if manifest.get("kind") != "Sweep" or path[:2] != ("spec", "template") or len(path) < 3:
        raise OverrideError(
            f"{override.key}: a comma list sweeps a template value; only "
            "`template.<path>` keys (or `spec.<path>` of an RLExperiment) can be swept. "
            "To set a list, write it in brackets: [a,b]"
        )
    key = ".".join(path[2:])
    parameters = manifest["spec"].setdefault("parameters", {})
    parameters[key] = {"type": "grid", "values": list(override.values)}


def _fix(manifest: dict[str, Any], override: Override, path: tuple[str, ...]) -> None:
    (value,) = override.values
    if manifest.get("kind") == "Sweep" and path[:2] == ("spec", "template") and len(path) > 2:
        _drop_parameter(manifest, ".".join(path[2:]))
    set_path(manifest, path, value, override.key)


def _drop_parameter(manifest: dict[str, Any], key: str) -> None:
    """A fixed value wins over a parameter of the same key."""
    spec = manifest.get("spec") or {}
    (spec.get("parameters") or {}).pop(key, None)
    if spec.get("paired"):
        groups = [[k for k in group if k != key] for group in spec["paired"]]
        spec["paired"] = [g for g in groups if len(g) > 1]


def set_path(node: Any, path: tuple[str, ...], value: Any, key: str) -> None:
    """Set `value` at `path`, creating mappings on the way; list indices must exist."""
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[:depth]) or "the manifest"
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise OverrideError(
                    f"{key}: {where} is a list of {len(node)} element(s); "
                    f"{part!r} is not an index in 0..{len(node) - 1}"
                )
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        else:
            raise OverrideError(f"{key}: {where} is a value ({node!r}), not a mapping or list")
