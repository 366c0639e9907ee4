"""Shared pieces of the KubeRay backend tests: fixed settings, stored experiments, the real CRD."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from rlops.api import RLExperiment
from rlops.api.settings import Settings
from tests.conftest import KUBERAY_CRDS
from tests.kube.schema import Cause, StructuralSchema

RAYJOB_CRD = KUBERAY_CRDS / "ray.io_rayjobs.yaml"


def settings(**overrides: Any) -> Settings:
    """Settings as a test cluster would have them, with a fixed secret (stable goldens)."""
    values: dict[str, Any] = {
        "image": "ghcr.io/rlops/rlops:0.1.0",
        "secret": "test-secret",
        "progress_url": "http://rlops-operator.rlops-system.svc:8081",
        "storage_path": "/data/rlops",
        **overrides,
    }
    return Settings(**values)


def stored(
    manifest: dict[str, Any], uid: str = "11111111-2222-3333-4444-555555555555"
) -> RLExperiment:
    """An RLExperiment as the API server returns it: with namespace and uid."""
    body = copy.deepcopy(manifest)
    body["metadata"].setdefault("namespace", "team-a")
    body["metadata"]["uid"] = uid
    body["metadata"]["generation"] = 1
    return RLExperiment.model_validate(body)


RAYCLUSTER_CRD = KUBERAY_CRDS / "ray.io_rayclusters.yaml"


@functools.cache
def rayjob_schema(crd_file: Path = RAYJOB_CRD) -> StructuralSchema:
    crd = yaml.safe_load(crd_file.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return StructuralSchema(version["schema"]["openAPIV3Schema"])


def crd_violations(rayjob: dict[str, Any], crd_file: Path = RAYJOB_CRD) -> list[str]:
    """Fields KubeRay's v1.7.0 schema (of RayJobs, or of `crd_file`'s kind) would prune
    (unknown) or reject, as `path: message`."""
    body = copy.deepcopy(rayjob)
    schema = rayjob_schema(crd_file)
    unknown = schema.prune(body)
    schema.default(body)
    causes: list[Cause] = schema.validate(body)
    return [f"{path}: unknown field" for path in unknown] + [str(c) for c in causes]
