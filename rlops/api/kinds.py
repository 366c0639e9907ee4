"""The group, version and plural of a custom resource kind, as the Kubernetes API names it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
