"""Field errors and the small rules every part of validation shares."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    """One problem in a manifest."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check its spelling; nothing unknown is accepted)"
        elif err["type"] == "missing":
            message = "required"
        out.append(FieldError(path, message))
    return out


def check_name(path: str, name: str, limit: int) -> list[FieldError]:
    errors = []
    if len(name) > limit:
        errors.append(FieldError(path, f"{len(name)} characters; at most {limit} allowed"))
    if not DNS_LABEL.fullmatch(name):
        errors.append(
            FieldError(
                path,
                f"{name!r} is not a valid name: lower-case letters, digits and '-', "
                "starting and ending with a letter or digit",
            )
        )
    return errors


def one_of(value: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(value, allowed, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"{value!r} is not allowed{hint}; valid: {', '.join(allowed)}"


def has_control(text: str) -> bool:
    return any(ord(c) < 32 for c in text)


def has_unsafe(text: str, extra: str) -> bool:
    return any(not (c.isalnum() or c in extra) for c in text)
