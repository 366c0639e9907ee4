"""The CRDs' own checks (pattern, maxLength, minimum, CEL) and how they agree with the validator.

With no webhook installed, the API server (here the emulator, evaluating CEL with
cel-python) refuses what the CRDs can express: each bad manifest below is refused by
`kubectl apply` with the field path, and `rlops validate`'s validator rejects the same
manifest at the same field. Good manifests (the examples) pass both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.crd import crd
from rlops.api.validation import validate_manifest
from tests.builders import experiment, sweep
from tests.kube.fixtures import KubeTestBed
from tests.kube.schema import StructuralSchema

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"

# name -> (manifest, field the CRD and the validator both name, words of the CRD's message)
BAD: dict[str, tuple[dict[str, Any], str, str]] = {
    "long-name": (experiment("x" * 48).obj(), "metadata.name", "48 characters; at most 47"),
    "upper-case-name": (experiment("Bad").obj(), "metadata.name", "not a valid name"),
    "long-sweep-name": (sweep("s" * 37).obj(), "metadata.name", "37 characters; at most 36"),
    "command-and-algorithm": (
        experiment("both").command("python", "train.py").set("spec.algorithm", "PPO").obj(),
        "spec.algorithm",
        "set exactly one of `algorithm`",
    ),
    "command-with-environment": (
        experiment("cmdenv").command("python", "t.py").set("spec.environment.id", "X-v1").obj(),
        "spec.environment",
        "RLlib algorithms only",
    ),
    "slurm-without-cluster": (
        experiment("noslurm").set("spec.placement.backend", "slurm").obj(),
        "spec.placement.slurm",
        "required when backend is slurm",
    ),
    "memory-not-a-quantity": (
        experiment("mem").set("spec.resources.memory", "4 GB").obj(),
        "spec.resources.memory",
        "should match",
    ),
    "queue-not-a-name": (
        experiment("queue").kubernetes(queue="Team Queue").obj(),
        "spec.placement.kubernetes.queue",
        "should match",
    ),
    "slurm-time": (
        experiment("hours").slurm(cluster="hpc", timeLimit="2 hours").obj(),
        "spec.placement.slurm.timeLimit",
        "should match",
    ),
    "zero-nodes": (
        experiment("nodes").set("spec.resources.nodes", 0).obj(),
        "spec.resources.nodes",
        "greater than or equal to 1",
    ),
    "random-sweep-without-max-trials": (
        sweep("rnd").set("spec.algorithm", "random").obj(),
        "spec.maxTrials",
        "required for algorithm random",
    ),
}


def schema_of(kind: str) -> StructuralSchema:
    return StructuralSchema(crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("case", sorted(BAD))
def test_crd_and_validator_reject_the_same_field(case: str) -> None:
    manifest, field, words = BAD[case]
    causes = schema_of(manifest["kind"]).validate(manifest)
    assert any(words in str(c) for c in causes), [str(c) for c in causes]
    crd_fields = {c.field or "metadata.name" for c in causes}
    assert field in crd_fields, (crd_fields, field)
    validator_fields = {e.path for e in validate_manifest(manifest)}
    assert any(p == field or p.startswith(field + ".") for p in validator_fields), validator_fields


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_examples_pass_the_crds(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") in ("RLExperiment", "Sweep"):
            assert schema_of(doc["kind"]).validate(doc) == [], path


@pytest.mark.e2e
def test_kubectl_apply_is_refused_by_the_crds_with_the_field(
    kube: KubeTestBed, kube_namespace: str
) -> None:
    for case, (manifest, field, words) in BAD.items():
        done = kube.kubectl(
            "apply", "-n", kube_namespace, "-f", "-", input=yaml.safe_dump(manifest)
        )
        assert done.returncode != 0, f"{case} was accepted"
        assert "is invalid" in done.stderr and words in done.stderr, (case, done.stderr)
        if field != "metadata.name":
            assert field in done.stderr, (case, done.stderr)
