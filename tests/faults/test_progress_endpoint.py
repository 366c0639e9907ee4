"""Hostile requests to the progress endpoint: every unauthenticated request (a non-ASCII
token, an unknown experiment) is 403; deep, oversized or non-finite JSON, too many metric
keys and over-long strings are 400; a slow body times out; the hub's memory stays bounded
under a flood while its status writes fail (measured with tracemalloc); a flood of
rejections is logged once per kind and interval."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rlops.api.runinfo import ProgressRecord
from rlops.backends.kuberay import progress_token
from rlops.operator.progress import (
    MAX_BODY_BYTES,
    MAX_METRICS,
    MAX_POINTS,
    Key,
    Pending,
    ProgressHub,
    progress_app,
)

SECRET = "s3cret"
UIDS = {("ns", "a"): "uid-a"}
AUTH = {"Authorization": f"Bearer {progress_token(SECRET, 'ns', 'a', 'uid-a')}"}
RECORD = {"iteration": 1, "timesteps": 1, "time_seconds": 1.0, "timestamp": 0.0}


async def nothing(key: Key, pending: Pending) -> None:
    return None


def client(hub: ProgressHub | None = None, **kwargs: Any) -> TestClient:  # type: ignore[type-arg]
    app = progress_app(hub or ProgressHub(nothing, 60.0), SECRET, UIDS.get, **kwargs)
    return TestClient(TestServer(app))


async def test_unauthenticated_requests_are_403_whatever_the_token_or_experiment() -> None:
    async with client() as c:
        for name, headers in [
            ("a", {"Authorization": "Bearer \u00e9\u00e8\u4e2d"}),
            ("a", {"Authorization": "Basic x"}),
            ("a", {}),
            (
                "unknown",
                {"Authorization": f"Bearer {progress_token(SECRET, 'ns', 'unknown', 'u')}"},
            ),
            ("unknown", {}),
        ]:
            response = await c.post(f"/progress/ns/{name}", json=RECORD, headers=headers)
            assert response.status == 403, (name, headers, await response.text())


async def test_hostile_bodies_are_400() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    bodies = {
        "deep": deep,
        "oversized": json.dumps(RECORD | {"metrics": {"x" * 50: 1.0}, "pad": "y" * MAX_BODY_BYTES}),
        "NaN": json.dumps(RECORD).replace("1.0", "NaN"),
        "Infinity": json.dumps(RECORD).replace("1.0", "Infinity"),
        "metrics": json.dumps(RECORD | {"metrics": {f"m{i}": 1.0 for i in range(MAX_METRICS + 1)}}),
        "long key": json.dumps(RECORD | {"metrics": {"k" * 5000: 1.0}}),
    }
    async with client() as c:
        for case, body in bodies.items():
            response = await c.post("/progress/ns/a", data=body, headers=AUTH)
            assert response.status == 400, (case, response.status)
        long_path = {"status": "succeeded", "exit_code": 0, "best_checkpoint": "/c" * 100_000}
        final = await c.post("/progress/ns/a?final=1", data=json.dumps(long_path), headers=AUTH)
        assert final.status == 400
        huge = {"status": "succeeded", "exit_code": 0, "episode_return_mean": 1e308}
        final = await c.post("/progress/ns/a?final=1", data=json.dumps(huge), headers=AUTH)
        assert final.status == 400 and "out of range" in await final.text()
        ok = await c.post("/progress/ns/a", json=RECORD, headers=AUTH)
        assert ok.status == 202


async def test_a_slow_body_times_out() -> None:
    async with client(body_timeout=0.5) as c:
        reader, writer = await asyncio.open_connection(c.host, c.port)
        headers = "".join(f"{k}: {v}\r\n" for k, v in AUTH.items())
        writer.write(
            f"POST /progress/ns/a HTTP/1.1\r\nHost: x\r\n{headers}"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
        assert b" 408 " in status
        writer.close()


async def test_hub_memory_is_bounded_under_a_flood_with_failing_writes() -> None:
    async def failing(key: Key, pending: Pending) -> None:
        raise RuntimeError("API server unavailable")

    hub = ProgressHub(failing, interval=0.001)
    big = RECORD | {"metrics": {f"learners/policy_{i:02d}/{'x' * 80}": 1.0 for i in range(64)}}
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(5000):
        hub.submit(("ns", "a"), ProgressRecord.model_validate(big | {"iteration": i}), None)
        if i % 100 == 0:
            await asyncio.sleep(0.002)  # let the failing writer run and merge back
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    pending = hub.pending.get(("ns", "a"))
    assert pending is not None and len(pending.points) <= MAX_POINTS
    print(f"hub grew by {grown / 2**20:.1f} MiB after 5000 records of 64 metrics")
    assert grown < 4 * 2**20  # 0.6 MiB measured; unbounded, the points alone were ~23 MiB
    hub.forget(("ns", "a"))


async def test_malformed_requests_are_the_same_403_as_unknown_experiments() -> None:
    """Another method, path or query: the very answer an unknown experiment gets."""
    async with client() as c:
        unknown = await c.post("/progress/ns/unknown", json=RECORD)
        expected = (unknown.status, await unknown.read())
        assert expected[0] == 403
        for method, path, headers in [
            ("GET", "/progress/ns/a", AUTH),
            ("PUT", "/progress/ns/a", AUTH),
            ("DELETE", "/progress/ns/unknown", {}),
            ("POST", "/progress/ns", AUTH),
            ("POST", "/progress/ns/a/extra", AUTH),
            ("GET", "/", {}),
            ("POST", "/progress/ns/a?final=yes", AUTH),
            ("POST", "/progress/ns/a?debug=1", AUTH),
        ]:
            response = await c.request(method, path, json=RECORD, headers=headers)
            assert (response.status, await response.read()) == expected, (method, path)
        accepted = await c.post("/progress/ns/a", json=RECORD, headers=AUTH)
        assert accepted.status == 202


async def test_rejections_are_logged_once_per_interval_per_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flood of forged tokens or bad bodies gives one warning per kind, not one a request;
    a name from the URL is logged without its line breaks."""
    async with client() as c:
        for i in range(50):
            forged = {"Authorization": f"Bearer forged-{i}"}
            await c.post(f"/progress/ns/x{i}%0Aforged", json=RECORD, headers=forged)
            nan = f'{{"iteration": {i}, "x": NaN}}'
            bad = await c.post("/progress/ns/a", data=nan, headers=AUTH)
            assert bad.status == 400
    rejected = [r.getMessage() for r in caplog.records if "rejected progress" in r.getMessage()]
    assert len(rejected) == 2, rejected
    assert rejected[0] == "rejected progress of ns/x0\\nforged: invalid token"
    assert rejected[1].startswith("rejected progress of ns/a: ")
