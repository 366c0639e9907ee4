"""CEL validation rules of CRDs (`x-kubernetes-validations`), evaluated with cel-python.

Each rule of a schema node is evaluated with `self` bound to the value at that node
(absent values are not checked, as the API server does); a false result becomes a cause
at the node's path plus the rule's `fieldPath`, with its `message` or
`messageExpression`. Transition rules (those reading `oldSelf`) are not evaluated, and
neither is the API server's cost budget.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import celpy

from tests.kube.schema import Cause, Schema, field_path

_REASONS = {
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}


@functools.cache
def _program(expression: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def evaluate(expression: str, **variables: Any) -> Any:
    """`expression` over JSON-like `variables` (shared with admission policies, policies.py);
    a parse or evaluation error raises."""
    return _program(expression).evaluate({k: celpy.json_to_cel(v) for k, v in variables.items()})


def _evaluate(expression: str, value: Any) -> Any:
    return _evaluate_json(expression, json.dumps(value, sort_keys=True))


@functools.lru_cache(maxsize=4096)
def _evaluate_json(expression: str, value: str) -> Any:
    """A rule's result on a value, remembered: a rule reads only `self`, so the many
    objects that share a sub-object (every trial of a sweep) cost one evaluation, where
    cel-python's tree walk takes milliseconds (kube-apiserver's compiled CEL, microseconds)."""
    return evaluate(expression, self=json.loads(value))


def cel_causes(schema: Schema, value: Any, path: list[Any] | None = None) -> Iterator[Cause]:
    """Every CEL rule under `schema` that `value` breaks."""
    path = path or []
    for rule in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in rule["rule"]:
            continue
        where = field_path(path) + rule.get("fieldPath", "")
        where = where.lstrip(".")
        try:
            ok = bool(_evaluate(rule["rule"], value))
        except Exception as exc:  # a CEL evaluation error, reported as the server does
            yield Cause("FieldValueInvalid", where, f'Invalid value: "object": {exc}')
            continue
        if ok:
            continue
        message = rule.get("message") or f"failed rule: {rule['rule']}"
        if "messageExpression" in rule:
            message = str(_evaluate(rule["messageExpression"], value))
        reason = rule.get("reason", "FieldValueInvalid")
        prefix = _REASONS.get(reason, 'Invalid value: "object"')
        yield Cause(reason, where, f"{prefix}: {message}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            child = properties.get(key, additional if isinstance(additional, dict) else None)
            if child is not None and item is not None:
                yield from cel_causes(child, item, [*path, key])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from cel_causes(schema["items"], item, [*path, index])
