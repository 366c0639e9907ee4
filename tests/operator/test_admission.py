"""The admission module's pure parts: the webhook's decision, the Failed status of an invalid
object, and the self-signed certificate (the end-to-end path is test_admission_e2e.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kopf
import pytest
from cryptography import x509

from rlops.api.validation import validate_manifest
from rlops.operator.admission import check, denial, manifest_errors, refused_status, self_signed
from rlops.operator.kube import RLEXPERIMENTS, SWEEPS
from tests.builders import experiment, sweep


def body(obj: dict[str, Any]) -> kopf.Body:
    return kopf.Body(obj)


def test_the_webhook_refuses_an_invalid_create_with_every_error() -> None:
    bad = experiment("bad").algorithm("PPOO").set("spec.stop.timesteps", -1).obj()
    with pytest.raises(kopf.AdmissionError) as refused:
        check(body=body(bad), old=None, operation="CREATE")
    errors = validate_manifest(bad)
    assert str(refused.value) == denial(errors)
    assert str(refused.value).startswith("2 errors: spec.algorithm: 'PPOO' is not allowed")
    assert refused.value.code == 422
    check(body=body(experiment("good").obj()), old=None, operation="CREATE")


def test_metadata_edits_and_deletions_of_an_invalid_object_pass() -> None:
    bad = experiment("bad").algorithm("PPOO").obj()
    annotated = {**bad, "metadata": {**bad["metadata"], "annotations": {"rlops.dev/stop": "x"}}}
    check(body=body(annotated), old=bad, operation="UPDATE")
    deleting = {**bad, "metadata": {**bad["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    check(body=body(deleting), old=bad, operation="UPDATE")
    with pytest.raises(kopf.AdmissionError):
        check(body=body(bad), old=experiment("bad").obj(), operation="UPDATE")


def test_an_invalid_object_fails_stalled_with_its_field_paths() -> None:
    bad = experiment("bad").algorithm("PPOO").obj()
    bad["metadata"].update(uid="u1", generation=3)
    bad["status"] = {"attempts": 2}
    errors = manifest_errors(bad)
    status = refused_status(RLEXPERIMENTS, bad, errors, "2026-01-01T00:00:00Z")
    assert status["phase"] == "Failed" and status["attempts"] == 2
    assert status["message"].startswith("invalid: 1 error: spec.algorithm: 'PPOO'")
    assert status["observedGeneration"] == 3
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False",
        "Reconciling": "False",
        "Stalled": "True",
    }
    bad_sweep = sweep("sw").set("spec.algorithm", "random").obj()
    status = refused_status(SWEEPS, bad_sweep, manifest_errors(bad_sweep), "t")
    assert status["phase"] == "Failed" and "spec.maxTrials" in status["message"]


def test_errors_are_remembered_per_uid_and_generation() -> None:
    obj = experiment("cached").algorithm("PPOO").obj()
    obj["metadata"].update(uid="u2", generation=1)
    first = manifest_errors(obj)
    assert manifest_errors(obj) is first
    fixed = experiment("cached").obj()
    fixed["metadata"].update(uid="u2", generation=2)
    assert manifest_errors(fixed) == []


def test_the_self_signed_certificate_names_the_service(tmp_path: Path) -> None:
    cert_path, key_path = self_signed("rlops-operator.rlops-system.svc", tmp_path)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "rlops-operator.rlops-system.svc" in names.get_values_for_type(x509.DNSName)
    assert key_path.stat().st_mode & 0o077 == 0
