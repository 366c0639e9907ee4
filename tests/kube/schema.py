"""Structural OpenAPI v3 schemas of CRDs: pruning, defaulting and validation.

The API server treats a CR in this order: unknown fields are pruned (or
reported, under `fieldValidation=Strict`), `null`s of non-nullable fields are
dropped, defaults are filled in, and the result is validated. Validation goes
through the `jsonschema` library: `to_jsonschema` converts the Kubernetes
dialect (`nullable`, `x-kubernetes-int-or-string`, boolean
`exclusiveMinimum`, ...) into draft 7, and `Cause`s carry the field paths and
messages the real server returns. CEL rules (`x-kubernetes-validations`) are
evaluated by `cel.py` once the value passes the schema; `format` checks are not.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema

Schema = dict[str, Any]

_EMBEDDED = ("apiVersion", "kind", "metadata")
# Keywords copied as they are: they mean the same in OpenAPI v3 and draft 7.
_SAME = (
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "required",
)


def to_jsonschema(schema: Schema) -> Schema:
    """Convert one structural OpenAPI v3 schema (recursively) to JSON Schema draft 7."""
    out: Schema = {key: copy.deepcopy(schema[key]) for key in _SAME if key in schema}
    nullable = bool(schema.get("nullable"))
    if schema.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string", "null"] if nullable else ["integer", "string"]
    elif "type" in schema:
        out["type"] = [schema["type"], "null"] if nullable else schema["type"]
    if nullable and "enum" in out and None not in out["enum"]:
        out["enum"].append(None)
    if schema.get("exclusiveMinimum") is True and "minimum" in out:
        out["exclusiveMinimum"] = out.pop("minimum")
    if schema.get("exclusiveMaximum") is True and "maximum" in out:
        out["exclusiveMaximum"] = out.pop("maximum")
    if schema.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if "properties" in schema:
        out["properties"] = {k: to_jsonschema(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = to_jsonschema(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        out["items"] = to_jsonschema(schema["items"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            out[key] = [to_jsonschema(s) for s in schema[key]]
    if "not" in schema:
        out["not"] = to_jsonschema(schema["not"])
    return out


@dataclass(frozen=True)
class Cause:
    """One entry of `Status.details.causes`, as the API server writes it."""

    reason: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def field_path(parts: Any) -> str:
    """`["spec", "containers", 0, "image"]` -> `spec.containers[0].image`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _quote(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, dict | list) else _go_type(value)


class StructuralSchema:
    """One CRD version's `openAPIV3Schema`, with its compiled validator."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        root = to_jsonschema(schema)
        # The API server validates metadata itself; the CRD may only narrow it.
        root.get("properties", {}).pop("metadata", None)
        self._validator = jsonschema.Draft7Validator(root)

    # -- pruning ---------------------------------------------------------------
    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Drop unknown fields and non-nullable nulls in place; return the unknown paths."""
        unknown: list[str] = []
        for key in list(obj):
            if key in ("apiVersion", "kind", "metadata"):
                continue
            self._prune_field(obj, key, self.schema, [], unknown)
        return unknown

    def _prune_field(
        self, parent: dict[str, Any], key: str, schema: Schema, path: list[Any], unknown: list[str]
    ) -> None:
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        if key in properties:
            child: Schema | None = properties[key]
        elif isinstance(additional, dict):
            child = additional
        elif additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
            child = None
        elif schema.get("x-kubernetes-embedded-resource") and key in _EMBEDDED:
            return
        else:
            unknown.append(field_path([*path, key]))
            del parent[key]
            return
        if child is None:
            return
        if parent[key] is None and not child.get("nullable"):
            del parent[key]
            return
        self._prune_value(parent[key], child, [*path, key], unknown)

    def _prune_value(self, value: Any, schema: Schema, path: list[Any], unknown: list[str]) -> None:
        if isinstance(value, dict):
            if (
                schema.get("x-kubernetes-preserve-unknown-fields")
                and "properties" not in schema
                and "additionalProperties" not in schema
            ):
                return
            for key in list(value):
                self._prune_field(value, key, schema, path, unknown)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                self._prune_value(item, schema["items"], [*path, index], unknown)

    # -- defaulting ------------------------------------------------------------
    def default(self, obj: dict[str, Any]) -> None:
        """Fill in `default`s of absent fields in place (never under metadata)."""
        for key, child in (self.schema.get("properties") or {}).items():
            if key == "metadata":
                continue
            if key not in obj and "default" in child:
                obj[key] = copy.deepcopy(child["default"])
            if key in obj:
                _default_value(obj[key], child)

    # -- validation ------------------------------------------------------------
    def validate(self, obj: dict[str, Any]) -> list[Cause]:
        """Every schema violation of `obj`, as the API server's causes."""
        body = {k: v for k, v in obj.items() if k != "metadata"}
        causes: list[Cause] = []
        seen: set[tuple[str, str]] = set()
        for error in self._validator.iter_errors(body):
            for cause in _causes(error):
                if (cause.field, cause.reason) not in seen:
                    seen.add((cause.field, cause.reason))
                    causes.append(cause)
        if not causes:  # CEL sees well-typed values only
            from tests.kube.cel import cel_causes

            causes += cel_causes(self.schema, obj)
        return sorted(causes, key=lambda c: c.field)


def _default_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, child in properties.items():
            if key not in value and "default" in child:
                value[key] = copy.deepcopy(child["default"])
        for key, item in value.items():
            child = properties.get(key)
            if child is None and isinstance(schema.get("additionalProperties"), dict):
                child = schema["additionalProperties"]
            if child is not None:
                _default_value(item, child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_value(item, schema["items"])


def _causes(error: jsonschema.ValidationError) -> Iterator[Cause]:
    path = field_path(error.absolute_path)
    value = error.instance
    kind = error.validator
    if kind == "required":
        for name in error.validator_value:
            if isinstance(value, dict) and name not in value:
                yield Cause(
                    "FieldValueRequired", field_path([*error.absolute_path, name]), "Required value"
                )
        return
    if kind == "type":
        wanted = error.validator_value
        wanted = (
            " or ".join(t for t in wanted if t != "null") if isinstance(wanted, list) else wanted
        )
        message = f"{path} in body must be of type {wanted}: {_quote(_go_type(value))}"
        yield Cause(
            "FieldValueTypeInvalid", path, f"Invalid value: {_quote(_go_type(value))}: {message}"
        )
        return
    if kind == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        yield Cause(
            "FieldValueNotSupported",
            path,
            f"Unsupported value: {_quote(value)}: supported values: {allowed}",
        )
        return
    wording = {
        "minimum": f"should be greater than or equal to {error.validator_value}",
        "exclusiveMinimum": f"should be greater than {error.validator_value}",
        "maximum": f"should be less than or equal to {error.validator_value}",
        "exclusiveMaximum": f"should be less than {error.validator_value}",
        "minLength": f"should be at least {error.validator_value} chars long",
        "maxLength": f"may not be longer than {error.validator_value}",
        "pattern": f"should match '{error.validator_value}'",
        "minItems": f"should have at least {error.validator_value} items",
        "maxItems": f"must have at most {error.validator_value} items",
        "uniqueItems": "shouldn't contain duplicates",
    }.get(str(kind), error.message)
    yield Cause(
        "FieldValueInvalid", path, f"Invalid value: {_quote(value)}: {path} in body {wording}"
    )
