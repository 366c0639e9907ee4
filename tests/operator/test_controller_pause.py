"""The operator's driver around a pause (the Kubernetes calls recorded by a fake client): the
paused run's last result only fills in progress and result, never the phase, and a resume looks
the RayJob up before it creates the same attempt's RayJob again and clears that result."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from rlops.api.runinfo import ProgressRecord, RunResult
from rlops.api.settings import Settings
from rlops.metrics import RlopsMetrics
from rlops.operator.controller import Controller
from rlops.operator.kube import Kind
from rlops.operator.progress import Pending
from tests.builders import experiment, rayjob

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
KEY = ("ns", "cp")
PAUSED = {
    "phase": "Paused",
    "backend": "kubernetes",
    "attempts": 1,
    "message": "paused: paused by sweep s at an ASHA rung",
    "backendRef": {"kind": "RayJob", "name": "cp", "namespace": "ns"},
    "progress": {"iteration": 3, "timesteps": 600},
}


class FakeKube:
    """Records every call; no RayJob exists."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", kind.plural, name))
        return None

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> bool:
        self.calls.append(("create", kind.plural, body))
        return True

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.calls.append(("delete", kind.plural, name))

    def apply_secret(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append(("apply_secret", "secrets", body))

    def patch_status(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> str:
        self.calls.append(("patch_status", kind.plural, patch))
        return "100"

    def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.calls.append(("event", reason, message))

    def of(self, call: str) -> list[Any]:
        return [c[2] for c in self.calls if c[0] == call]


def controller_with(status: dict[str, Any], annotations: dict[str, str]) -> tuple[Controller, Any]:
    body = experiment("cp", namespace="ns").kubernetes().obj()
    body["metadata"].update(uid="u-1", generation=1, resourceVersion="7", annotations=annotations)
    body["status"] = status
    kube = FakeKube()
    metrics = RlopsMetrics(CollectorRegistry())
    controller = Controller(Settings(secret="s"), kube, metrics, clock=lambda: NOW)  # type: ignore[arg-type]
    controller.indexes.bind(experiments={KEY: [body]}, rayjobs={})
    return controller, kube


async def test_the_paused_runs_last_result_leaves_the_phase_alone() -> None:
    controller, kube = controller_with(PAUSED, {"rlops.dev/pause": "paused by sweep s"})
    record = ProgressRecord(iteration=4, timesteps=800, time_seconds=8.0, timestamp=0.0,
                            episode_return_mean=30.0)  # fmt: skip
    result = RunResult(status="stopped", exit_code=0, episode_return_mean=30.0,
                       stop_reason="requeue", iteration=4, timesteps=800)  # fmt: skip
    await controller.write_progress(KEY, Pending(record, result, [record]))
    (patch,) = kube.of("patch_status")
    assert set(patch["status"]) == {"progress", "result"}  # the phase stays Paused
    assert patch["status"]["result"]["stopReason"] == "requeue"
    assert patch["status"]["progress"]["timesteps"] == 800


async def test_resume_creates_the_same_attempt_and_clears_the_result() -> None:
    before = {**PAUSED, "result": {"finalObjective": 30.0, "stopReason": "requeue"}}
    controller, kube = controller_with(before, {"rlops.dev/promotions": "1"})
    await controller.sync_experiment(KEY)
    assert kube.of("get") == ["cp"]  # the index is not trusted to show the old RayJob gone
    (rayjob,) = kube.of("create")
    assert rayjob["kind"] == "RayJob" and rayjob["metadata"]["labels"]["rlops.dev/attempt"] == "1"
    (patch,) = kube.of("patch_status")
    status = patch["status"]
    assert status["phase"] == "Submitted" and status["result"] is None
    assert "attempts" not in status and "progress" not in status  # unchanged
    assert [c[1] for c in kube.calls if c[0] == "event"] == ["Submitted"]
    assert not kube.of("delete")


async def test_pausing_deletes_the_rayjob_and_writes_paused_once() -> None:
    running = {**PAUSED, "phase": "Running", "message": "training"}
    controller, kube = controller_with(running, {"rlops.dev/pause": "paused by sweep s"})
    controller.indexes.bind(rayjobs={KEY: [rayjob("Running")]})
    await controller.sync_experiment(KEY)
    assert kube.of("delete") == ["cp"] and not kube.of("create")
    (patch,) = kube.of("patch_status")
    assert patch["status"]["phase"] == "Paused" and "result" not in patch["status"]
    assert patch["status"]["message"] == "paused: paused by sweep s"
