"""The one writer of status: a merge patch of the changed fields only, never a write of
what the server already has, changes that can wait held (`rlops.operator.writes`), and an
Event on the phase transitions worth one.

Because kopf's index can lag several versions behind the operator's own writes, the
writer remembers what it last wrote (`Sent`) and compares against that while the index
still shows an older resourceVersion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from rlops.api import Phase, SweepPhase
from rlops.api.ratelimit import ErrorLog
from rlops.operator.indexes import Body, Lookup, Sent, before
from rlops.operator.kube import RLEXPERIMENTS, Kind, Kube
from rlops.operator.progress import Key
from rlops.operator.status import applied, reconciled_fields, status_patch
from rlops.operator.writes import HeldWrites, SentKey, can_wait, worth_an_event

log = logging.getLogger(__name__)


class StatusWriter:
    """Writes the status of the operator's objects; holds what can wait."""

    def __init__(
        self,
        kube: Kube,
        call: Callable[..., Any],
        lock: Callable[[Key], asyncio.Lock],
        experiment: Lookup,
        errors: ErrorLog,
        window: float,
    ) -> None:
        self.kube = kube
        self.call = call
        self.lock = lock
        self.experiment = experiment
        self.errors = errors
        self.sent: dict[SentKey, Sent] = {}
        self.held = HeldWrites(window, self._flush_held)

    def effective(self, kind: Kind, body: Body) -> dict[str, Any]:
        """`body`, with the status this operator wrote if the index has not caught up yet.

        The index lags behind writes, sometimes by several versions. A version older than
        our last write's still shows the status we wrote; resourceVersions are opaque, but
        every etcd-backed API server issues them as increasing integers, so they are
        compared as such (and any version we saw before writing counts as older).
        """
        meta = body["metadata"]
        key = (kind.plural, meta["namespace"], meta["name"])
        held = self.held.status(key)
        if held is not None:
            return {**body, "status": held}
        sent = self.sent.get(key)
        if sent is None:
            return dict(body)
        version = meta.get("resourceVersion")
        if version in sent.older or before(version, sent.version):
            return {**body, "status": sent.status}
        del self.sent[key]
        return dict(body)

    async def write(
        self,
        kind: Kind,
        body: Body,
        status: Mapping[str, Any],
        fields: Collection[str] | None = None,
        hold: bool = True,
    ) -> bool:
        """Write the fields of `status` that differ from `body`'s; False when none do.

        The index may still hold the version this operator last patched: then what it
        wrote is the status to compare with, so a lagging index causes no second write.
        A change that can wait (`writes.can_wait`) is held and sent with the next write,
        unless `hold` is False (a final result: it must not die with this process).
        """
        meta = body["metadata"]
        key = (kind.plural, meta["namespace"], meta["name"])
        old = self.effective(kind, body).get("status") or {}
        if fields is None:
            fields = reconciled_fields(status, old)
        patch = status_patch(old, status, fields)
        if patch is None:
            return False
        new = applied(old, patch)
        if hold and kind is RLEXPERIMENTS and can_wait(old, patch["status"]):
            self.held.hold(key, old, new, patch["status"])
            return True
        held = self.held.take(key)
        if held is None:
            await self._send(kind, body, old, new, patch["status"])
            return True
        try:
            await self._send(kind, body, held.base, new, held.fields | set(patch["status"]))
        except Exception:
            self.held.hold(key, held.base, held.status, held.fields)  # kept for the retry
            raise
        return True

    async def _send(
        self, kind: Kind, body: Body, old: Mapping[str, Any], new: Mapping[str, Any],
        fields: Collection[str],
    ) -> None:  # fmt: skip
        """One status patch turning `old` (what the server has) into `new`, and its Event."""
        meta = body["metadata"]
        key = (kind.plural, meta["namespace"], meta["name"])
        patch = status_patch(old, new, fields)
        if patch is None:
            return
        log.debug(
            "status of %s %s/%s (at %s): %s",
            kind.plural, meta["namespace"], meta["name"], meta.get("resourceVersion"), patch,
        )  # fmt: skip
        version = await self.call(
            self.kube.patch_status, kind, meta["namespace"], meta["name"], patch
        )
        sent = self.sent.setdefault(key, Sent())
        sent.older.update(v for v in (meta.get("resourceVersion"), sent.version) if v)
        sent.version, sent.status = version, applied(old, patch)
        if worth_an_event(old, new):
            phase = str(new["phase"])
            failed = phase in (Phase.FAILED.value, SweepPhase.FAILED.value)
            message = str(new.get("message") or phase)
            await self.call(
                self.kube.event, dict(body), "Warning" if failed else "Normal", phase, message
            )

    async def _flush_held(self, key: SentKey) -> None:
        """Write an experiment's held changes once their window ends (retried on failure)."""
        async with self.lock(key[1:]):
            held = self.held.take(key)
            body = self.experiment(key[1:])
            if held is None or body is None:
                return
            try:
                await self._send(RLEXPERIMENTS, body, held.base, held.status, held.fields)
            except Exception as exc:
                self.errors.log(f"status of {key[1]}/{key[2]}",
                                f"writing the status of {key[1]}/{key[2]} failed; retrying: "
                                f"{exc!r}", exc=exc)  # fmt: skip
                self.held.hold(key, held.base, held.status, held.fields)

    def forget(self, key: SentKey) -> None:
        self.sent.pop(key, None)
        self.held.forget(key)
        self.errors.forget(f"status of {key[1]}/{key[2]}")

    async def flush(self) -> None:
        """Write every held change now (the operator is stopping)."""
        for key in list(self.held.held):
            await self._flush_held(key)
