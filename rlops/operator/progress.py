"""The progress endpoint: training pods POST progress here, the operator writes status.

`POST /progress/<namespace>/<name>` with `Authorization: Bearer <token>`, where the
token is HMAC-SHA256(operator secret, "<namespace>/<name>/<uid>") and reaches the
runtime in its RayJob's runtime environment. A token opens one experiment's
progress and nothing else, so training pods need no Kubernetes rights at all.
The body is a ProgressRecord, or with `?final=1` the attempt's RunResult.

Records are coalesced: an object's status is written at most once per
`status_flush_seconds`, with the newest record; a final result is written at
once. History points (iteration, objective) gathered in between are kept for
early stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import ValidationError

from rlops.api.runinfo import ProgressRecord, RunResult
from rlops.backends.kuberay import progress_token

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass
class Pending:
    record: ProgressRecord | None = None
    result: RunResult | None = None
    points: list[ProgressRecord] = field(default_factory=list)


Writer = Callable[[Key, Pending], Awaitable[None]]


class ProgressHub:
    """Keeps the newest progress of each object and writes it at most every `interval` s."""

    def __init__(
        self, write: Writer, interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.write = write
        self.interval = interval
        self.clock = clock
        self.pending: dict[Key, Pending] = {}
        self.last_write: dict[Key, float] = {}
        self.tasks: dict[Key, asyncio.Task[None]] = {}
        self.urgent: dict[Key, asyncio.Event] = {}

    def submit(self, key: Key, record: ProgressRecord | None, result: RunResult | None) -> None:
        self._merge(key, Pending(record, result, [record] if record is not None else []))
        if key not in self.tasks:
            self.urgent[key] = asyncio.Event()
            self.tasks[key] = asyncio.get_running_loop().create_task(self._run(key))
        elif result is not None:
            self.urgent[key].set()

    def _merge(self, key: Key, new: Pending) -> None:
        pending = self.pending.setdefault(key, Pending())
        if new.record is not None and (
            pending.record is None or new.record.iteration >= pending.record.iteration
        ):
            pending.record = new.record
        pending.result = new.result or pending.result
        pending.points.extend(new.points)

    async def _run(self, key: Key) -> None:
        """Write the object's pending progress until there is none, `interval` apart."""
        urgent = self.urgent[key]
        try:
            while key in self.pending:
                wait = self.last_write.get(key, -math.inf) + self.interval - self.clock()
                if wait > 0 and self.pending[key].result is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(urgent.wait(), wait)
                urgent.clear()
                pending = self.pending.pop(key)
                self.last_write[key] = self.clock()
                try:
                    await self.write(key, pending)
                except Exception:
                    log.exception("writing the progress of %s/%s failed; retrying", *key)
                    self._merge(key, pending)
        finally:
            self.tasks.pop(key, None)
            self.urgent.pop(key, None)

    def forget(self, key: Key) -> None:
        self.pending.pop(key, None)
        self.last_write.pop(key, None)
        task = self.tasks.pop(key, None)
        if task is not None:
            task.cancel()


def progress_app(
    hub: ProgressHub, secret: str, uid_of: Callable[[Key], str | None]
) -> web.Application:
    """The aiohttp application of the progress endpoint."""

    async def receive(request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        log.debug("progress POST for %s/%s (final=%s)", *key, request.query.get("final"))
        uid = uid_of(key)
        if uid is None:
            return web.json_response({"error": f"no RLExperiment {key[0]}/{key[1]}"}, status=404)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expected = progress_token(secret, key[0], key[1], uid)
        if scheme != "Bearer" or not hmac.compare_digest(token, expected):
            log.warning("rejected progress of %s/%s: invalid token", *key)
            return web.json_response({"error": "invalid token for this experiment"}, status=403)
        final = request.query.get("final") == "1"
        try:
            data = await request.json()
            if final:
                hub.submit(key, None, RunResult.model_validate(data))
            else:
                hub.submit(key, ProgressRecord.model_validate(data), None)
        except (ValueError, ValidationError) as exc:
            log.warning("rejected progress of %s/%s: %s", *key, exc)
            return web.json_response({"error": f"body: {exc}"}, status=400)
        return web.json_response({"accepted": True}, status=202)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/progress/{namespace}/{name}", receive)
    return app
