"""What the operator spares the API server (the Kubernetes calls recorded by a fake client):
status changes that can wait ride with the next write or go alone after the flush window,
a first submission posts no Event, and a sweep re-planned before its index shows the
children it created does not create them again."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from rlops.api.runinfo import ProgressRecord
from rlops.api.settings import Settings
from rlops.metrics import RlopsMetrics
from rlops.operator.controller import Controller
from rlops.operator.indexes import Creations
from rlops.operator.kube import RLEXPERIMENTS, Kind
from rlops.operator.progress import Pending
from rlops.operator.writes import can_wait, worth_an_event
from tests.builders import experiment, rayjob, sweep
from tests.operator.test_controller_pause import KEY, NOW, PAUSED, FakeKube

RUNNING = {k: v for k, v in PAUSED.items() if k != "progress"} | {
    "phase": "Running", "message": "training"}  # fmt: skip
RECORD = ProgressRecord(iteration=3, timesteps=600, time_seconds=6.0, timestamp=0.0,
                        episode_return_mean=25.0)  # fmt: skip


class Kube(FakeKube):
    def patch(self, kind: Kind, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("patch", kind.plural, patch))


def running_controller(flush_seconds: float = 60.0) -> tuple[Controller, Kube]:
    body = experiment("cp", namespace="ns").kubernetes().obj()
    body["metadata"].update(uid="u-1", generation=1, resourceVersion="7")
    body["status"] = dict(RUNNING)
    kube = Kube()
    settings = Settings(secret="s", status_flush_seconds=flush_seconds)
    controller = Controller(settings, kube, RlopsMetrics(CollectorRegistry()), clock=lambda: NOW)  # type: ignore[arg-type]
    controller.indexes.bind(experiments={KEY: [body]}, rayjobs={KEY: [rayjob("Running")]})
    return controller, kube


async def test_progress_rides_with_the_next_phase_transition() -> None:
    controller, kube = running_controller()
    await controller.write_progress(KEY, Pending(RECORD, None, [RECORD]))
    assert not kube.of("patch_status")  # held
    body = controller.indexes.experiment(KEY)
    assert body is not None
    done = {**controller.effective(RLEXPERIMENTS, body)["status"], "phase": "Succeeded"}
    await controller.write_status(RLEXPERIMENTS, body, done)
    (patch,) = kube.of("patch_status")
    assert patch["status"]["phase"] == "Succeeded"
    assert patch["status"]["progress"]["iteration"] == 3
    assert [c[1] for c in kube.calls if c[0] == "event"] == ["Succeeded"]


async def test_a_held_change_goes_alone_when_its_window_ends() -> None:
    controller, kube = running_controller(flush_seconds=0.05)
    await controller.write_progress(KEY, Pending(RECORD, None, [RECORD]))
    for _ in range(200):
        if kube.of("patch_status"):
            break
        await asyncio.sleep(0.01)
    (patch,) = kube.of("patch_status")
    assert set(patch["status"]) == {"progress"}
    assert not kube.of("event")


def test_what_waits_and_what_gets_an_event() -> None:
    assert can_wait({"phase": "Running"}, ["progress", "result"])
    assert not can_wait({"phase": "Running"}, ["phase", "message"])
    assert not can_wait({"phase": "Paused"}, ["result"])  # nothing follows to ride with
    assert not worth_an_event({}, {"phase": "Submitted", "attempts": 1})
    assert worth_an_event({"phase": "Failed"}, {"phase": "Submitted", "attempts": 2})
    assert worth_an_event({"phase": "Paused"}, {"phase": "Submitted", "attempts": 1})
    assert worth_an_event({"phase": "Running"}, {"phase": "Succeeded"})
    assert not worth_an_event({"phase": "Running"}, {"phase": "Running", "message": "x"})


async def test_a_replan_before_the_index_shows_the_children_creates_none_again() -> None:
    builder = sweep("grid", namespace="ns").param("config.training.lr", "grid", values=[0.1, 0.2])
    builder.template("placement", {"backend": "kubernetes"}).set("spec.parallelism", 2)
    body = builder.obj()
    body["metadata"].update(uid="sweep-uid", generation=1, resourceVersion="3")
    controller, kube = running_controller()
    controller.indexes.bind(sweeps={("ns", "grid"): [body]}, trials={})
    await controller.sync_sweep(("ns", "grid"))
    await controller.sync_sweep(("ns", "grid"))  # the trials index still shows none
    created = [b["metadata"]["name"] for b in kube.of("create")]
    assert created == ["grid-0", "grid-1"]


def test_creations_are_forgotten_once_indexed_or_after_their_ttl() -> None:
    now = [0.0]
    creations = Creations(ttl=60.0, clock=lambda: now[0])
    creations.remember(("ns", "s"), {"metadata": {"name": "s-0"}})
    creations.remember(("ns", "s"), {"metadata": {"name": "s-1"}})
    assert len(creations.unseen(("ns", "s"), [])) == 2
    assert [m["metadata"]["name"] for m in creations.unseen(("ns", "s"), [
        {"metadata": {"name": "s-0"}}])] == ["s-1"]  # fmt: skip
    now[0] = 61.0
    assert creations.unseen(("ns", "s"), []) == []
