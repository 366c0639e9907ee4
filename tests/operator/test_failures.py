"""Errors that stay local, in the controller with a recording fake of the Kubernetes calls:
a create the API server refuses (400/403/422) makes the experiment Failed with the server's
message and asks no retry, other errors are retried; an experiment the model cannot read
becomes Failed naming the field, once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry

from rlops.api.settings import Settings
from rlops.backends.kuberay import refusal
from rlops.metrics import RlopsMetrics
from rlops.operator.controller import Controller
from rlops.operator.kube import Kind
from tests.builders import experiment
from tests.operator.test_controller_pause import KEY, NOW, FakeKube


def api_error(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="Whatever")
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


class RefusingKube(FakeKube):
    def __init__(self, refuse: str, error: ApiException) -> None:
        super().__init__()
        self.refuse, self.error = refuse, error

    def apply_secret(self, namespace: str, body: dict[str, Any]) -> None:
        super().apply_secret(namespace, body)
        if self.refuse == "Secret":
            raise self.error

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> bool:
        super().create(kind, namespace, body)
        if self.refuse == "RayJob":
            raise self.error
        return True


def controller(kube: FakeKube, status: dict[str, Any] | None = None) -> Controller:
    body = experiment("cp", namespace="ns").kubernetes().obj()
    body["metadata"].update(uid="u-1", generation=2, resourceVersion="7")
    if status is not None:
        body["status"] = status
    metrics = RlopsMetrics(CollectorRegistry())
    made = Controller(Settings(secret="s"), kube, metrics, clock=lambda: NOW)  # type: ignore[arg-type]
    made.indexes.bind(experiments={KEY: [body]}, rayjobs={})
    return made


@pytest.mark.parametrize(("refused", "code"), [("RayJob", 422), ("RayJob", 403), ("Secret", 400)])
async def test_a_refused_create_fails_the_experiment_with_the_servers_reason(
    refused: str, code: int
) -> None:
    kube = RefusingKube(refused, api_error(code, f"{refused.lower()}s is forbidden: no"))
    made = controller(kube)
    await made.sync_experiment(KEY)
    (patch,) = kube.of("patch_status")
    status = patch["status"]
    assert status["phase"] == "Failed"
    assert status["message"] == (
        f"the API server refused the {refused} cp{'-progress' if refused == 'Secret' else ''}: "
        f"{refused.lower()}s is forbidden: no"
    )
    assert {c["type"]: c["status"] for c in status["conditions"]}["Stalled"] == "True"
    assert KEY not in made.rechecks  # no retry
    assert len(kube.of("create")) == (1 if refused == "RayJob" else 0)


async def test_other_errors_are_retried() -> None:
    kube = RefusingKube("RayJob", api_error(500, "etcd is down"))
    made = controller(kube)
    await made.sync_experiment(KEY)
    assert not kube.of("patch_status")
    assert KEY in made.rechecks
    made.rechecks[KEY].cancel()


async def test_an_unreadable_experiment_fails_once_naming_the_field() -> None:
    kube = FakeKube()
    made = controller(kube, {"phase": "Exploded", "attempts": 1})
    await made.sync_experiment(KEY)
    (patch,) = kube.of("patch_status")
    assert patch["status"]["phase"] == "Failed"
    assert patch["status"]["message"].startswith("cannot read this RLExperiment: status.phase")
    assert "attempts" not in patch["status"]
    assert not kube.of("create") and KEY not in made.rechecks


def test_only_refusals_a_retry_would_get_again_count() -> None:
    assert refusal(api_error(422, "bad")) == "bad"
    assert refusal(api_error(409, "exists")) is None
    assert refusal(api_error(503, "busy")) is None
    assert refusal(ValueError("x")) is None
    bare = ApiException(status=403, reason="Forbidden")
    assert refusal(bare) == "Forbidden"
