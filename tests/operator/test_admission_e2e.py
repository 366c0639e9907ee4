"""Validation at apply time, end to end: the real kubectl, the API emulator, `rlops operator`.

- With the operator's validating admission webhook configured as manifests/base/webhook.yaml
  configures it (its self-signed CA written into the configuration by the operator), the
  emulator sends AdmissionReview v1 over verified HTTPS, and `kubectl apply` of each bad
  RLExperiment and Sweep is refused with the validator's own messages (those of `rlops
  validate`); a good one is accepted; an update that breaks the spec is refused, an
  annotation on the same object is not.
- Without the webhook, the operator validates before creating anything: an invalid
  experiment becomes Failed (Stalled) with its field paths and gets no RayJob; an invalid
  Sweep becomes Failed and gets no trials.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.validation import validate_manifest
from tests.builders import experiment, sweep
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import (
    ROOT,
    OperatorProcess,
    free_port,
    get,
    names,
    status_of,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

WEBHOOK_MANIFEST = ROOT / "manifests" / "base" / "webhook.yaml"


def bad_manifests() -> dict[str, dict[str, Any]]:
    """Manifests the CRD's schema lets through and the validator rejects."""
    return {
        "unknown-algorithm": experiment("algo").algorithm("PPOO").kubernetes().obj(),
        "config-typo": experiment("typo").config("training", lrr=0.1).kubernetes().obj(),
        "bad-sweep": sweep("sw").param("training.lr", "loguniform", low=1e-2, high=1e-4).obj(),
    }


def webhook_configuration(name: str, namespace: str, port: int) -> dict[str, Any]:
    """The kustomize base's ValidatingWebhookConfiguration, pointed at this test's operator."""
    config = next(d for d in yaml.safe_load_all(WEBHOOK_MANIFEST.read_text()) if d["kind"] ==
                  "ValidatingWebhookConfiguration")  # fmt: skip
    config["metadata"]["name"] = name
    for webhook in config["webhooks"]:
        webhook["clientConfig"]["service"].update(namespace=namespace, port=port)
    return dict(config)


def apply(kube: KubeTestBed, namespace: str, manifest: dict[str, Any], *extra: str) -> Any:
    return kube.kubectl("apply", "-n", namespace, *extra, "-f", "-", input=yaml.safe_dump(manifest))


@pytest.fixture
def webhook(kube: KubeTestBed, kube_namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator serving its webhook, and the configuration that sends requests to it."""
    port = free_port()
    name = f"rlops-validation-{kube_namespace}"
    config = webhook_configuration(name, kube_namespace, port)
    kube.kubectl("create", "-f", "-", input=yaml.safe_dump(config), check=True)
    process = OperatorProcess(
        kube,
        kube_namespace,
        tmp_path,
        webhook_port=port,
        webhook_host=f"rlops-operator.{kube_namespace}.svc",
        webhook_configuration=name,
    )
    try:
        process.start()

        def ca_bundles() -> list[str] | None:
            out = kube.kubectl("get", "validatingwebhookconfiguration", name, "-o", "yaml")
            hooks = yaml.safe_load(out.stdout)["webhooks"]
            bundles = [h["clientConfig"].get("caBundle") or "" for h in hooks]
            return bundles if all(bundles) else None

        bundles = wait_until(ca_bundles, 60, "the operator to write its CA", interval=0.5)
        assert b"BEGIN CERTIFICATE" in base64.b64decode(bundles[0])
        probe = bad_manifests()["unknown-algorithm"]
        wait_until(
            lambda: "denied the request" in apply(kube, kube_namespace, probe).stderr,
            60,
            "the webhook to answer",
            interval=0.5,
        )
        yield process
    finally:
        process.stop()
        kube.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


def test_kubectl_apply_of_bad_manifests_is_refused_with_the_validators_messages(
    kube: KubeTestBed, kube_namespace: str, webhook: OperatorProcess
) -> None:
    ns = kube_namespace
    for case, manifest in bad_manifests().items():
        plural = "rlexperiments" if manifest["kind"] == "RLExperiment" else "sweeps"
        errors = validate_manifest(manifest)
        assert errors, case
        for extra in ((), ("--dry-run=server",)):
            done = apply(kube, ns, manifest, *extra)
            assert done.returncode != 0, f"{case} was accepted"
            assert f'admission webhook "{plural}.validation.rlops.dev" denied the request' in (
                done.stderr
            ), done.stderr
            for error in errors:
                assert str(error) in done.stderr, (case, str(error), done.stderr)
        assert get(kube, plural, ns, manifest["metadata"]["name"]) is None
    refused = apply(kube, ns, bad_manifests()["unknown-algorithm"]).stderr
    assert "spec.algorithm: 'PPOO' is not allowed (did you mean PPO" in refused
    refused = apply(kube, ns, bad_manifests()["config-typo"]).stderr
    assert "spec.config.training.lrr: unknown keyword of training(): 'lrr'" in refused


def test_the_webhook_lets_good_manifests_and_metadata_edits_through(
    kube: KubeTestBed, kube_namespace: str, webhook: OperatorProcess
) -> None:
    ns = kube_namespace
    good = experiment("good").kubernetes().obj()
    assert apply(kube, ns, good).returncode == 0
    broken = experiment("good").algorithm("PPOO").kubernetes().obj()
    done = apply(kube, ns, broken)
    assert done.returncode != 0 and "spec.algorithm: 'PPOO'" in done.stderr
    assert (get(kube, "rlx", ns, "good") or {})["spec"]["algorithm"] == "PPO"
    done = kube.kubectl("annotate", "rlx", "good", "-n", ns, "team=rl")
    assert done.returncode == 0, done.stderr
    assert apply(kube, ns, sweep("fine").param("training.lr", "choice", values=[0.1]).obj())


def test_an_invalid_object_applied_without_the_webhook_fails_and_creates_nothing(
    kube: KubeTestBed, kube_namespace: str, operator: OperatorProcess
) -> None:
    ns = kube_namespace
    for manifest in bad_manifests().values():
        assert apply(kube, ns, manifest).returncode == 0

    def failed(kind: str, name: str) -> dict[str, Any] | None:
        status = status_of(kube, kind, ns, name)
        return status if status.get("phase") == "Failed" else None

    status = wait_until(lambda: failed("rlx", "algo"), 60, "the experiment to fail", interval=0.5)
    assert status["message"].startswith("invalid: 1 error: spec.algorithm: 'PPOO' is not allowed")
    stalled = {c["type"]: c["status"] for c in status["conditions"]}
    assert stalled == {"Ready": "False", "Reconciling": "False", "Stalled": "True"}
    status = wait_until(lambda: failed("rlx", "typo"), 60, "the typo to fail", interval=0.5)
    assert "spec.config.training.lrr" in status["message"]
    status = wait_until(lambda: failed("sweep", "sw"), 60, "the sweep to fail", interval=0.5)
    assert "spec.parameters.training.lr.low: low (0.01) must be below high" in status["message"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Stalled"] == "True"
    events = json.loads(kube.kubectl("get", "events", "-n", ns, "-o", "json", check=True).stdout)
    warnings = [e["message"] for e in events["items"] if e["type"] == "Warning"]
    assert any("spec.algorithm: 'PPOO'" in m for m in warnings), warnings
    assert names(kube, "rayjobs", ns) == []
    assert names(kube, "rlx", ns) == ["algo", "typo"]  # no trials of the sweep
