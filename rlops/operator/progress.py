"""The progress endpoint: training pods POST progress here, the operator writes status.

`POST /progress/<namespace>/<name>` with `Authorization: Bearer <token>`, where the
token is HMAC-SHA256(operator secret, "<namespace>/<name>/<uid>") and reaches the
runtime in its RayJob's runtime environment. A token opens one experiment's
progress and nothing else, so training pods need no Kubernetes rights at all.
The body is a ProgressRecord, or with `?final=1` the attempt's RunResult.

Records are coalesced: an object's status is written at most once per
`status_flush_seconds`, with the newest record. A final result is written at once, and
answered only once it is in the status (202), or with 503 if that takes longer than
`FINAL_WAIT_SECONDS`: the runtime sends it again until it is answered, so an operator
killed meanwhile loses no result. History points (iteration, objective) gathered in
between are kept for early stopping (at most `MAX_POINTS` per object, the newest).

Nothing a pod sends can exhaust the operator: any request without the experiment's token
(or for an experiment that does not exist: no 404 tells which exist), and any malformed
request (another method or path, an unknown query) gets the same 403 with the same body
before its body is read; a body is read within `BODY_TIMEOUT_SECONDS` and must be at most
`MAX_BODY_BYTES` of JSON nested at most `MAX_DEPTH` deep, with finite numbers, strings of at
most `MAX_STRING` characters, at most `MAX_METRICS` metrics and numbers (but metrics)
within ±`MAX_NUMBER`, else 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from rlops.api.ratelimit import ErrorLog
from rlops.api.runinfo import MAX_REPORTED_METRICS, MAX_REPORTED_STRING, ProgressRecord, RunResult
from rlops.backends.kuberay import progress_token

log = logging.getLogger(__name__)
WARN = logging.WARNING

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_STRING = MAX_REPORTED_STRING
MAX_METRICS = MAX_REPORTED_METRICS
MAX_NUMBER = 1e15  # a return or a count beyond this is a pod lying, and would overflow sums
MAX_POINTS = 128
BODY_TIMEOUT_SECONDS = 10.0
FINAL_WAIT_SECONDS = 4.0  # under the runtime's 5 s per POST (rlops.runtime.reporter)

Key = tuple[str, str]


@dataclass
class Pending:
    record: ProgressRecord | None = None
    result: RunResult | None = None
    points: list[ProgressRecord] = field(default_factory=list)
    written: list[asyncio.Future[None]] = field(default_factory=list)  # final results' senders


Writer = Callable[[Key, Pending], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProgressHub:
    """Keeps the newest progress of each object and writes it at most every `interval` s."""

    def __init__(
        self,
        write: Writer,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        max_points: int = MAX_POINTS,
    ) -> None:
        self.write = write
        self.max_points = max_points
        self.interval = interval
        self.clock = clock
        self.pending: dict[Key, Pending] = {}
        self.last_write: dict[Key, float] = {}
        self.tasks: dict[Key, asyncio.Task[None]] = {}
        self.urgent: dict[Key, asyncio.Event] = {}

    def submit(
        self, key: Key, record: ProgressRecord | None, result: RunResult | None
    ) -> asyncio.Future[None] | None:
        """Queue a record or a final result; for a result, a future done once it is written."""
        written = asyncio.get_running_loop().create_future() if result is not None else None
        self._merge(key, Pending(record, result, [record] if record is not None else [],
                                 [written] if written is not None else []))  # fmt: skip
        if key not in self.tasks:
            self.urgent[key] = asyncio.Event()
            self.tasks[key] = asyncio.get_running_loop().create_task(self._run(key))
        elif result is not None:
            self.urgent[key].set()
        return written

    def _merge(self, key: Key, new: Pending) -> None:
        pending = self.pending.setdefault(key, Pending())
        if new.record is not None and (
            pending.record is None or new.record.iteration >= pending.record.iteration
        ):
            pending.record = new.record
        pending.result = new.result or pending.result
        pending.points.extend(new.points)
        pending.written.extend(new.written)
        # Bounded while writes fail or a pod floods: the newest points are kept.
        del pending.points[: -self.max_points]

    async def _run(self, key: Key) -> None:
        """Write the object's pending progress until there is none, `interval` apart."""
        urgent = self.urgent[key]
        failing = False
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
                    failing = False
                    for written in pending.written:
                        if not written.done():
                            written.set_result(None)
                except Exception:
                    # The first failure with its traceback; the retries of an outage quietly.
                    level = logging.DEBUG if failing else logging.ERROR
                    log.log(level, "writing the progress of %s/%s failed; retrying", *key,
                            exc_info=True)  # fmt: skip
                    failing = True
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
    hub: ProgressHub,
    secret: str,
    uid_of: Callable[[Key], str | None],
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    final_wait: float = FINAL_WAIT_SECONDS,
) -> web.Application:
    """The aiohttp application of the progress endpoint; its rejections are logged once per
    5 min per kind (invalid token, slow body, bad body), with a count of the rest."""
    rejections = ErrorLog(log, any_message=True)

    @web.middleware
    async def forbid_the_rest(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Whatever the router does not serve is 403 as well: no 404 or 405 says what exists."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status in (404, 405):
                return forbidden()
            raise

    async def receive(request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        log.debug("progress POST for %s/%s (final=%s)", *key, request.query.get("final"))
        uid = uid_of(key)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expected = progress_token(secret, *key, uid) if uid is not None else ""
        given = token.encode("utf-8", "surrogateescape")
        where = ascii(f"{key[0]}/{key[1]}"[:300])[1:-1]  # from the URL: no line breaks logged
        if uid is None or scheme != "Bearer" or not hmac.compare_digest(given, expected.encode()):
            rejections.log("token", f"rejected progress of {where}: invalid token", WARN)
            return forbidden()
        if set(request.query) - {"final"} or request.query.get("final", "1") != "1":
            return forbidden()
        final = request.query.get("final") == "1"
        try:
            data = await read_body(request, body_timeout)
            if final:
                written = hub.submit(key, None, RunResult.model_validate(data))
                assert written is not None
                try:  # answered once it is in the status: else it is sent again
                    await asyncio.wait_for(asyncio.shield(written), final_wait)
                except TimeoutError:
                    return web.json_response({"error": "result not written yet"}, status=503)
            else:
                hub.submit(key, ProgressRecord.model_validate(data), None)
        except TimeoutError:
            rejections.log("slow", f"rejected progress of {where}: body not read in time", WARN)
            return web.json_response({"error": "body not received in time"}, status=408)
        except (ValueError, ValidationError) as exc:
            rejections.log("body", f"rejected progress of {where}: {str(exc)[:300]}", WARN)
            return web.json_response({"error": f"body: {exc}"[:2000]}, status=400)
        return web.json_response({"accepted": True}, status=202)

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[forbid_the_rest])
    app.router.add_post("/progress/{namespace}/{name}", receive)
    return app


def forbidden() -> web.Response:
    """The one answer to every request that is not an authenticated, well-formed POST."""
    return web.json_response({"error": "forbidden"}, status=403)


async def read_body(request: web.Request, timeout: float = BODY_TIMEOUT_SECONDS) -> Any:
    """The JSON body within the limits of this module; ValueError says which one it broke."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise ValueError(f"larger than {MAX_BODY_BYTES} bytes")
    try:
        raw = await asyncio.wait_for(request.read(), timeout)
    except web.HTTPRequestEntityTooLarge as exc:
        raise ValueError(f"larger than {MAX_BODY_BYTES} bytes") from exc
    if json_depth(raw) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH}")
    data = json.loads(raw, parse_constant=_no_constant)
    check_sizes(data)
    return data


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings are skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif byte in b"]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def check_sizes(value: Any, path: str = "") -> None:
    """At most MAX_STRING characters per string or key, at most MAX_METRICS metrics, and
    the fields that become objectives and counts (all but metrics) within ±MAX_NUMBER."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) > MAX_NUMBER and not path.startswith("metrics."):
            raise ValueError(f"{path}: {value:g} is out of range (at most ±{MAX_NUMBER:g})")
    elif isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ValueError(f"{path or 'body'}: {len(value)} characters; at most {MAX_STRING}")
    elif isinstance(value, dict):
        if path == "metrics" and len(value) > MAX_METRICS:
            raise ValueError(f"metrics: {len(value)} keys; at most {MAX_METRICS}")
        for key, item in value.items():
            check_sizes(key, path)
            check_sizes(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_sizes(item, f"{path}.{i}")
