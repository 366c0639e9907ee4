"""Applying sampled values to a template by dotted path (`config.training.lr`, `...hiddens.0`)."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from rlops.api import RLExperimentSpec


class ParameterError(ValueError):
    """A parameter path that does not fit the template, or a value the template rejects."""


def apply_parameters(template: RLExperimentSpec, parameters: Mapping[str, Any]) -> RLExperimentSpec:
    """The template with each dotted path set to its value, validated again.

    Paths are written in the manifest form: the first part is a spec field (`config`,
    `resources`, `stop`, `seed`, `environment`, `checkpoint`, ...); model fields may be
    given by their camelCase alias or their snake_case name; free mappings (`config`,
    `environment.config`) take keys as written; list elements are addressed by index.
    Missing mapping keys are created, list indices must exist.
    """
    manifest: dict[str, Any] = template.dump()
    for path, value in parameters.items():
        set_path(manifest, path, value)
    try:
        return RLExperimentSpec.model_validate(manifest)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        names = ", ".join(parameters)
        raise ParameterError(f"parameters {names} give an invalid spec: {problems}") from exc


def set_path(manifest: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` in a spec manifest in place (see `apply_parameters`)."""
    parts = path.split(".")
    if not all(parts):
        raise ParameterError(f"{path!r} is not a dotted path")
    node: Any = manifest
    model: type[BaseModel] | None = RLExperimentSpec
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[:depth]) or "the spec"
        if isinstance(node, list):
            if not part.isdigit():
                raise ParameterError(f"{path}: {where} is a list; index it with a number")
            index = int(part)
            if index >= len(node):
                raise ParameterError(
                    f"{path}: index {index} is out of range; {where} has {len(node)} element(s)"
                )
            if last:
                node[index] = value
                return
            node, model = node[index], None
        elif isinstance(node, dict):
            key, model = _manifest_key(model, part, path)
            if last:
                node[key] = value
                return
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        else:
            raise ParameterError(f"{path}: {where} is a value, not a mapping or a list")


def _manifest_key(
    model: type[BaseModel] | None, part: str, path: str
) -> tuple[str, type[BaseModel] | None]:
    """The manifest key of `part` under `model`, and the model of its value (if any)."""
    if model is None:
        return part, None
    for name, info in model.model_fields.items():
        alias = info.alias or name
        if part in (name, alias):
            return alias, _model_of(info.annotation)
    allowed = ", ".join(sorted(info.alias or name for name, info in model.model_fields.items()))
    raise ParameterError(f"{path}: {part!r} is not a field of {model.__name__}; valid: {allowed}")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `X | None`; None for free mappings."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None
