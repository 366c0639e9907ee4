"""Label selectors (`a=b,c!=d,e in (f,g),!h`), field selectors (`metadata.name=x`) and the
pages of a listing (`limit`, `continue`)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


class SelectorError(ValueError):
    """A selector that does not parse; the message quotes the bad requirement."""


def _split(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if match := _SET_RE.match(text):
        key, op, values = match[1], match[2], {v.strip() for v in match[3].split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if text.startswith("!"):
        key = text[1:].strip()
        return lambda labels: key not in labels
    for op in ("!=", "==", "="):
        if op in text:
            key, value = (s.strip() for s in text.split(op, 1))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if re.fullmatch(r"[\w./-]+", text):
        return lambda labels: text in labels
    raise SelectorError(f"unable to parse requirement: {text!r}")


def label_selector(text: str | None) -> Predicate:
    """A predicate over objects for a `labelSelector` query parameter."""
    requirements = [_requirement(part) for part in _split(text or "")]
    return lambda obj: all(r(obj.get("metadata", {}).get("labels") or {}) for r in requirements)


def _field(obj: dict[str, Any], dotted: str) -> str:
    node: Any = obj
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def field_selector(text: str | None) -> Predicate:
    """A predicate for a `fieldSelector`: `=`, `==` and `!=` on any dotted field path."""
    checks: list[tuple[str, str, bool]] = []  # (path, value, equal)
    for part in _split(text or ""):
        for op in ("!=", "==", "="):
            if op in part:
                path, value = (s.strip() for s in part.split(op, 1))
                checks.append((path, value, op != "!="))
                break
        else:
            raise SelectorError(f"invalid field selector: {part!r}")
    return lambda obj: all((_field(obj, p) == v) == equal for p, v, equal in checks)


def page(items: list[Any], limit: str | None, token: str | None) -> tuple[list[Any], str]:
    """One page of a sorted listing (`limit`, `continue`), and the token of the next ("" at
    the end). The token names the last object served, so a page goes on after it as the
    API server's does; unlike etcd's, later pages are not a snapshot of the first's version."""
    if token:
        try:
            after = tuple(json.loads(base64.urlsafe_b64decode(token)))
        except (ValueError, TypeError):
            raise SelectorError(f"invalid continue token: {token!r}") from None
        items = [o for o in items if _key(o) > after]
    size = int(limit) if limit and limit.isdigit() and int(limit) > 0 else 0
    if not size or len(items) <= size:
        return items, ""
    last = json.dumps(list(_key(items[size - 1]))).encode()
    return items[:size], base64.urlsafe_b64encode(last).decode()


def _key(obj: Any) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])
