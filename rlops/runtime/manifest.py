"""Reading and checking the one RLExperiment the runtime trains."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlops.api.experiment import RLExperiment
from rlops.api.manifests import ManifestError, load_one
from rlops.api.validation import FieldError, validate_manifest


@dataclass(frozen=True)
class LoadedManifest:
    """The manifest as given, its parsed form, and the directory it came from."""

    raw: dict[str, Any]
    experiment: RLExperiment
    directory: Path | None


class InvalidManifest(Exception):
    """The manifest cannot be trained; every problem is listed."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def read_raw(spec: Path | None, spec_b64: str | None) -> tuple[dict[str, Any], Path | None]:
    """The manifest mapping from a file or from base64 text, and the file's directory."""
    if spec is not None:
        try:
            return load_one(spec, kind="RLExperiment"), spec.resolve().parent
        except ManifestError as exc:
            raise InvalidManifest([FieldError("--spec", str(exc))]) from exc
    try:
        text = base64.b64decode(spec_b64 or "", validate=True).decode()
        doc = yaml.safe_load(text)
    except (binascii.Error, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidManifest(
            [FieldError("--spec-b64", f"not base64 of a YAML or JSON manifest: {exc}")]
        ) from exc
    if not isinstance(doc, dict):
        raise InvalidManifest([FieldError("--spec-b64", "the manifest must be a mapping")])
    return doc, None


def load_manifest(spec: Path | None, spec_b64: str | None) -> LoadedManifest:
    """The validated RLExperiment; raises InvalidManifest with every error."""
    raw, directory = read_raw(spec, spec_b64)
    if raw.get("kind") != "RLExperiment":
        raise InvalidManifest(
            [FieldError("kind", f"{raw.get('kind')!r}; the runtime trains one RLExperiment")]
        )
    errors = validate_manifest(raw)
    if errors:
        raise InvalidManifest(errors)
    return LoadedManifest(raw, RLExperiment.model_validate(raw), directory)
