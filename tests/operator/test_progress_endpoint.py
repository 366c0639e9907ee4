"""The progress endpoint and its coalescing: per-experiment HMAC tokens (a token opens one
experiment's progress only), body validation, at most one status write per interval per
object with the newest record and every history point, final results written at once, and
the status patch writing only the fields that changed (and only those its writer owns)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rlops.api.runinfo import ProgressRecord, RunResult
from rlops.backends.kuberay import progress_token
from rlops.operator.progress import Key, Pending, ProgressHub, progress_app
from rlops.operator.status import PROGRESS_FIELDS, applied, status_patch

SECRET = "operator-secret"
UIDS = {("ns", "a"): "uid-a", ("ns", "b"): "uid-b"}


def record(iteration: int) -> dict[str, Any]:
    return {"iteration": iteration, "timesteps": 100 * iteration, "time_seconds": 1.0 * iteration,
            "timestamp": 0.0, "episode_return_mean": 10.0 * iteration}  # fmt: skip


def auth(namespace: str, name: str, uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {progress_token(SECRET, namespace, name, uid)}"}


class Recorder:
    def __init__(self) -> None:
        self.writes: list[tuple[Key, Pending, float]] = []

    async def __call__(self, key: Key, pending: Pending) -> None:
        self.writes.append((key, pending, asyncio.get_running_loop().time()))


async def test_token_opens_one_experiment_only() -> None:
    hub = ProgressHub(Recorder(), interval=5.0)
    async with TestClient(TestServer(progress_app(hub, SECRET, UIDS.get))) as client:
        ok = await client.post("/progress/ns/a", json=record(1), headers=auth("ns", "a", "uid-a"))
        assert ok.status == 202
        other = await client.post(
            "/progress/ns/b", json=record(1), headers=auth("ns", "a", "uid-a")
        )
        assert other.status == 403
        stale = await client.post("/progress/ns/a", json=record(1), headers=auth("ns", "a", "old"))
        assert stale.status == 403
        missing = await client.post("/progress/ns/a", json=record(1))
        assert missing.status == 403
        unknown = await client.post("/progress/ns/c", json=record(1), headers=auth("ns", "c", "x"))
        assert unknown.status == 403  # no answer tells which experiments exist
        bad = await client.post(
            "/progress/ns/a", json={"iteration": "many"}, headers=auth("ns", "a", "uid-a")
        )
        assert bad.status == 400 and "iteration" in await bad.text()
    for task in list(hub.tasks.values()):
        task.cancel()


@pytest.mark.looptime
async def test_writes_are_coalesced_per_interval() -> None:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    hub = ProgressHub(recorder, interval=5.0, clock=loop.time)
    start = loop.time()
    for iteration in range(1, 11):  # one record a second for ten seconds
        hub.submit(("ns", "a"), ProgressRecord.model_validate(record(iteration)), None)
        await asyncio.sleep(1.0)
    await asyncio.sleep(10.0)
    times = [round(t - start) for _, _, t in recorder.writes]
    assert times == [0, 5, 10]  # the first at once, then one per interval
    newest = [p.record.iteration for _, p, _ in recorder.writes if p.record is not None]
    assert newest == [1, 6, 10]
    points = [r.iteration for _, p, _ in recorder.writes for r in p.points]
    assert points == list(range(1, 11))  # history keeps every point


@pytest.mark.looptime
async def test_final_result_is_written_without_waiting() -> None:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    hub = ProgressHub(recorder, interval=30.0, clock=loop.time)
    start = loop.time()
    hub.submit(("ns", "a"), ProgressRecord.model_validate(record(1)), None)
    await asyncio.sleep(1.0)
    hub.submit(("ns", "a"), ProgressRecord.model_validate(record(2)), None)
    hub.submit(("ns", "a"), None, RunResult(status="succeeded", exit_code=0))
    await asyncio.sleep(1.0)
    assert [round(t - start) for _, _, t in recorder.writes] == [0, 1]
    last = recorder.writes[-1][1]
    assert last.result is not None and last.record is not None and last.record.iteration == 2


async def test_a_final_result_is_answered_only_once_it_is_in_the_status() -> None:
    """An operator killed between taking a result and writing it must not lose it: the
    answer (202) comes after the write; a write that does not come in time is a 503, and
    the runtime sends the result again."""
    gate = asyncio.Event()
    written: list[Pending] = []

    async def slow(key: Key, pending: Pending) -> None:
        await gate.wait()
        written.append(pending)

    hub = ProgressHub(slow, interval=30.0)
    app = progress_app(hub, SECRET, UIDS.get, final_wait=0.5)
    final = {"status": "succeeded", "exit_code": 0}
    async with TestClient(TestServer(app)) as client:
        late = await client.post("/progress/ns/a?final=1", json=final,
                                 headers=auth("ns", "a", "uid-a"))  # fmt: skip
        assert late.status == 503 and not written  # not written yet: not acknowledged
        gate.set()
        again = await client.post("/progress/ns/a?final=1", json=final,
                                  headers=auth("ns", "a", "uid-a"))  # fmt: skip
        assert again.status == 202
        assert written and written[-1].result is not None
    for task in list(hub.tasks.values()):
        task.cancel()


async def test_failed_write_is_retried_with_newer_data_merged() -> None:
    calls: list[int] = []

    async def flaky(key: Key, pending: Pending) -> None:
        calls.append(pending.record.iteration if pending.record else 0)
        if len(calls) == 1:
            raise RuntimeError("API unavailable")

    hub = ProgressHub(flaky, interval=0.01)
    hub.submit(("ns", "a"), ProgressRecord.model_validate(record(1)), None)
    deadline = asyncio.get_running_loop().time() + 5
    while len(calls) < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert calls == [1, 1]


def test_status_patch_writes_only_what_changed() -> None:
    old = {"phase": "Running", "attempts": 1, "progress": {"iteration": 3}, "message": "x"}
    assert status_patch(old, dict(old)) is None
    new = {"phase": "Succeeded", "attempts": 1, "progress": {"iteration": 3}}
    assert status_patch(old, new) == {"status": {"phase": "Succeeded", "message": None}}
    assert applied(old, {"status": {"phase": "Succeeded", "message": None}}) == {
        "phase": "Running", "attempts": 1, "progress": {"iteration": 3},
    } | {"phase": "Succeeded"}  # fmt: skip


def test_progress_writer_leaves_the_reconcilers_fields_alone() -> None:
    newer_phase = {"phase": "Succeeded", "progress": {"iteration": 3}}
    stale_view = {"phase": "Running", "progress": {"iteration": 4}}
    patch = status_patch(newer_phase, stale_view, PROGRESS_FIELDS)
    assert patch == {"status": {"progress": {"iteration": 4}}}
