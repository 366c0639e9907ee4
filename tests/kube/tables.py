"""Server-side printing: `Table` responses for `kubectl get` (printer columns)."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from tests.kube.resources import ResourceType

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "CreationTimestamp is a timestamp representing the server time "
    "when this object was created.",
}
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def json_path(obj: Any, path: str) -> Any:
    """The value at a simple JSONPath (`.status.progress.timesteps`, `.items[0].name`), or None."""
    node = obj
    for match in _STEP.finditer(path.strip("{}")):
        if match[1] is not None:
            node = node.get(match[1]) if isinstance(node, dict) else None
        else:
            index = int(match[2])
            node = node[index] if isinstance(node, list) and index < len(node) else None
        if node is None:
            return None
    return node


def human_duration(seconds: float) -> str:
    """Kubernetes' `duration.HumanDuration`, as in the AGE column."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


def _cell(column: dict[str, Any], value: Any) -> Any:
    if value is None:
        return None
    kind = column.get("type")
    if kind == "date" and isinstance(value, str):
        stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return human_duration((datetime.datetime.now(datetime.UTC) - stamp).total_seconds())
    if kind == "integer" and isinstance(value, int | float):
        return int(value)
    if kind == "number" and isinstance(value, int | float):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    return value if isinstance(value, str) else json.dumps(value)


def table(
    rt: ResourceType, objects: list[dict[str, Any]], resource_version: str, include: str
) -> dict[str, Any]:
    """A `meta.k8s.io/v1 Table` of `objects`, with the CRD's printer columns (or Age)."""
    columns = list(rt.printer_columns) or [_AGE_COLUMN]
    rows = []
    for obj in objects:
        row: dict[str, Any] = {
            "cells": [
                obj["metadata"]["name"],
                *(_cell(c, json_path(obj, c["jsonPath"])) for c in columns),
            ]
        }
        if include == "Object":
            row["object"] = obj
        elif include == "Metadata":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    definitions = [_NAME_COLUMN] + [
        {
            "name": c["name"],
            "type": c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
