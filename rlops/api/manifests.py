"""Reading manifests from YAML files: several documents per file, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ManifestError(Exception):
    """A file that cannot be read as manifests."""


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in `path`, each a mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: {exc.strerror or exc}") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ManifestError(f"{path}: document {i} is a {type(doc).__name__}, not a mapping")
    if not docs:
        raise ManifestError(f"{path}: no manifest in the file")
    return docs


def load_one(path: Path, kind: str | None = None) -> dict[str, Any]:
    """The single manifest in `path` (of `kind` when given)."""
    docs = load_documents(path)
    if kind is not None:
        docs = [d for d in docs if d.get("kind") == kind] or docs
    if len(docs) != 1:
        raise ManifestError(f"{path}: expected one manifest, found {len(docs)}")
    return docs[0]
