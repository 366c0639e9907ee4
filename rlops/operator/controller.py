"""The operator's driver: carries out what the pure reconcilers decide.

It reads the latest objects from kopf's in-memory indexes (filled from watches,
so reading costs no request), calls `reconcile_experiment` / `reconcile_sweep`,
makes the API calls they ask for in worker threads, and writes status through its
`StatusWriter` only (`status_patch`: only what changed; what can wait rides with the next write).
One asyncio lock per experiment keeps its RayJob events, its own events and its
progress from being handled at the same time. Sweeps are re-planned by one task
per sweep that coalesces bursts of child events into one plan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rlops.api import RLExperiment, RLExperimentStatus, Sweep
from rlops.api.annotations import ANNOTATION_HISTORY
from rlops.api.ratelimit import ErrorLog
from rlops.api.settings import Settings
from rlops.backends.base import ExperimentBackend, Refused, Submission, work_key
from rlops.backends.kuberay import KubeRayBackend, Seen, run_dir
from rlops.lifecycle import Observation
from rlops.lifecycle.history import merged_history
from rlops.metrics import RlopsMetrics
from rlops.operator.admission import refuse_invalid
from rlops.operator.experiments import (
    expects_rayjob,
    objective_metric,
    reconcile_experiment,
    resuming,
    with_progress,
    with_result,
)
from rlops.operator.failures import (
    FAILED_FIELDS,
    corrupt_children,
    failed,
    unreadable,
)
from rlops.operator.indexes import Body, Creations, Indexes, now
from rlops.operator.kube import RLEXPERIMENTS, SWEEPS, Kind, Kube
from rlops.operator.progress import Key, Pending
from rlops.operator.sharedcluster import SharedClusters
from rlops.operator.status import (
    PROGRESS_FIELDS,
    reconciled_fields,
)
from rlops.operator.statuswriter import StatusWriter
from rlops.operator.sweeps import reconcile_sweep, trial_problem
from rlops.sweep import LABEL_SWEEP
from rlops.tracking.drivers import KubeTracking, result_phase, trial_snapshot

log = logging.getLogger(__name__)
RECONCILES = 32  # as many as the API worker threads (rlops.operator.main)


class Controller:
    def __init__(
        self,
        settings: Settings,
        kube: Kube,
        metrics: RlopsMetrics,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.metrics = metrics
        self.clock = clock
        self.indexes = Indexes()
        self.locks: dict[Key, asyncio.Lock] = {}
        self.sweep_tasks: dict[Key, asyncio.Task[None]] = {}
        self.sweep_dirty: set[Key] = set()
        self.rechecks: dict[Key, asyncio.TimerHandle] = {}
        self.create_limit = asyncio.Semaphore(16)
        # Reconciles in flight at once: the others wait holding only their key, not a parsed
        # experiment and its API call (at start-up every object's event arrives together).
        self.reconciles = asyncio.Semaphore(RECONCILES)
        self.errors = ErrorLog(log)  # a permanently failing object: once per 5 min
        self.creations = Creations()  # children created, until the index shows them
        self.writer = StatusWriter(kube, self.call, self.lock, self.indexes.experiment,
                                   self.errors, settings.status_flush_seconds)  # fmt: skip
        self.tracking = KubeTracking()
        # RayJobs through the same client, observed from the watch's index.
        self.backend: ExperimentBackend = KubeRayBackend(kube, settings, self._watched, clock)
        self.shared_clusters = SharedClusters(kube, settings)  # sweeps with sharedCluster

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def lock(self, key: Key) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def uid_of(self, key: Key) -> str | None:
        body = self.indexes.experiment(key)
        return (body.get("metadata") or {}).get("uid") if body else None

    # -- experiments -----------------------------------------------------------------

    async def sync_experiment(self, key: Key) -> None:
        """Reconcile one experiment from the latest indexed state of it and its RayJob."""
        async with self.reconciles, self.lock(key):
            body = self.indexes.experiment(key)
            if body is None:
                return
            try:
                with self.metrics.time_reconcile("RLExperiment"):
                    await self._sync_experiment(key, body)
            except Exception as exc:
                where = f"experiment {key[0]}/{key[1]}"
                self.errors.log(where, f"reconciling {where} failed; retrying: {exc!r}", exc=exc)
                self._recheck(key, 5.0)

    async def _sync_experiment(self, key: Key, body: Body) -> None:
        if await refuse_invalid(self, RLEXPERIMENTS, body):
            return
        try:
            experiment = RLExperiment.model_validate(self.effective(RLEXPERIMENTS, body))
        except ValidationError as exc:  # read again only once changed: no retry loop
            await self.write_status(RLEXPERIMENTS, body, unreadable(body, exc, self.clock()),
                                    FAILED_FIELDS)  # fmt: skip
            return
        work = await self._observe(key, experiment)
        actions = reconcile_experiment(experiment, work, self.clock())
        ref = experiment.status.backend_ref if experiment.status is not None else None
        if actions.end is not None:
            await self.call(self.backend.end, experiment, ref, actions.end)
        elif actions.cancel:
            await self.call(self.backend.cancel, experiment, ref)
        if actions.submit_attempt is not None:
            try:
                attempt, resumed = actions.submit_attempt, actions.resumed
                await self.call(self.backend.submit, Submission(experiment, attempt, (), resumed))
            except Refused as exc:  # Failed once, with the server's reason; no retry
                verdict = failed(actions.status, str(exc), experiment.metadata.generation,
                                 self.clock())  # fmt: skip
                actions = replace(actions, status=verdict, recheck_after=None)
        if actions.status is not None:
            status = actions.status.dump()
            owned = None
            if actions.submit_attempt is not None:
                # A new run: the result of the last one (failed, or paused) no longer holds.
                old = self.effective(RLEXPERIMENTS, body).get("status") or {}
                owned = reconciled_fields(status, old) | {"result"}
            await self.write_status(RLEXPERIMENTS, body, status, owned)
            self.metrics.observe_experiment(
                *key, actions.status, (body["metadata"].get("labels") or {}).get(LABEL_SWEEP)
            )
            await self._track_end(key, experiment, actions.status)
        if actions.recheck_after is not None:
            self._recheck(key, actions.recheck_after)

    async def _observe(self, key: Key, experiment: RLExperiment) -> Observation | None:
        """The experiment's RayJob as the backend observes it (from the watch's index)."""
        ref = experiment.status.backend_ref if experiment.status is not None else None
        observed = await self.call(self.backend.observe, [(experiment, ref)])
        work: Observation | None = observed.get(work_key(experiment))
        return work

    def _watched(self, experiment: RLExperiment) -> Seen | None:
        """The experiment's RayJob from the watch's index; the index may lag behind a
        RayJob just created, so the backend reads it again (None) before concluding it is
        gone (or, before a resume creates one, that the paused run's is)."""
        meta = experiment.metadata
        seen = self.indexes.rayjob((meta.namespace or "", meta.name or ""))
        if seen is None and (expects_rayjob(experiment) or resuming(experiment)):
            return None
        return Seen(seen)

    def _recheck(self, key: Key, delay: float) -> None:
        """Reconcile again after `delay` s (a deadline passes without any event)."""
        old = self.rechecks.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self.rechecks[key] = loop.call_later(
            delay, lambda: loop.create_task(self.sync_experiment(key))
        )

    def effective(self, kind: Kind, body: Body) -> dict[str, Any]:
        return self.writer.effective(kind, body)

    async def write_status(
        self, kind: Kind, body: Body, status: Mapping[str, Any],
        fields: Collection[str] | None = None, hold: bool = True,
    ) -> bool:  # fmt: skip
        return await self.writer.write(kind, body, status, fields, hold)

    def forget_experiment(self, key: Key) -> None:
        self.errors.forget(f"experiment {key[0]}/{key[1]}")
        self.metrics.forget_experiment(*key)
        self.writer.forget((RLEXPERIMENTS.plural, *key))
        self.locks.pop(key, None)
        handle = self.rechecks.pop(key, None)
        if handle is not None:
            handle.cancel()

    # -- progress --------------------------------------------------------------------

    async def write_progress(self, key: Key, pending: Pending) -> None:
        """The progress endpoint's writer: newest progress and result into the status."""
        async with self.lock(key):
            body = self.indexes.experiment(key)
            log.debug("progress of %s/%s: %s", *key, pending.record or pending.result)
            if body is None:
                return
            experiment = RLExperiment.model_validate(self.effective(RLEXPERIMENTS, body))
            status = experiment.status or RLExperimentStatus()
            if pending.record is not None:
                status = with_progress(status, experiment.spec.stop, pending.record, self.clock())
            if pending.result is not None:
                metric = objective_metric(experiment)
                status = with_result(status, pending.result, metric, pending.record)
            # A final result is written at once: its sender is told only then.
            await self.write_status(RLEXPERIMENTS, body, status.dump(), PROGRESS_FIELDS,
                                    hold=pending.result is None)  # fmt: skip
            labels = experiment.metadata.labels
            if pending.points and self._stops_early((key[0], labels.get(LABEL_SWEEP, ""))):
                await self._append_history(key, experiment, pending)
            self.metrics.observe_experiment(*key, status, labels.get(LABEL_SWEEP))
            sweep = self._sweep_of(key, experiment)
            if self.tracking.wanted(experiment, sweep):
                phase = result_phase(pending.result, status.phase.value)
                where = run_dir(experiment, self.settings)
                snap = trial_snapshot(experiment, phase, pending.points, pending.result, where)
                await self.call(self.tracking.trial, experiment, sweep, snap)

    def _sweep_of(self, key: Key, experiment: RLExperiment) -> dict[str, Any] | None:
        name = experiment.metadata.labels.get(LABEL_SWEEP)
        body = self.indexes.sweep((key[0], name)) if name else None
        return dict(body) if body is not None else None

    async def _track_end(self, key: Key, experiment: RLExperiment, status: Any) -> None:
        """An end the reconciler concluded (Stopped, Failed), to the trackers."""
        sweep = self._sweep_of(key, experiment)
        if status.phase.finished and self.tracking.wanted(experiment, sweep):
            where = run_dir(experiment, self.settings)
            snap = trial_snapshot(experiment, status.phase.value, run_dir=where)
            await self.call(self.tracking.ended, experiment, sweep, snap)

    def _stops_early(self, sweep_key: Key) -> bool:
        """Whether the trial's sweep stops trials early or is PBT, and so needs their history."""
        sweep = self.indexes.sweep(sweep_key)
        spec = (sweep.get("spec") or {}) if sweep is not None else {}
        return bool(spec.get("earlyStopping")) or spec.get("algorithm") == "pbt"

    async def _append_history(self, key: Key, experiment: RLExperiment, pending: Pending) -> None:
        metric = objective_metric(experiment)
        annotations = experiment.metadata.annotations
        text = merged_history(annotations, pending.points, metric, self.settings.history_points)
        if text is not None:
            patch = {"metadata": {"annotations": {ANNOTATION_HISTORY: text}}}
            await self.call(self.kube.patch, RLEXPERIMENTS, *key, patch)

    # -- sweeps ----------------------------------------------------------------------

    def poke_sweep(self, key: Key) -> None:
        """Re-plan the sweep soon; pokes that arrive meanwhile make one more plan, not many."""
        if key in self.sweep_tasks:
            self.sweep_dirty.add(key)
            return
        self.sweep_tasks[key] = asyncio.get_running_loop().create_task(self._sweep_loop(key))

    async def _sweep_loop(self, key: Key) -> None:
        try:
            while True:
                await asyncio.sleep(0.2)  # let a burst of child events settle
                self.sweep_dirty.discard(key)
                try:
                    await self.sync_sweep(key)
                except Exception as exc:
                    where = f"sweep {key[0]}/{key[1]}"
                    self.errors.log(where, f"reconciling {where} failed; retrying: {exc!r}",
                                    exc=exc)  # fmt: skip
                    await asyncio.sleep(2.0)
                    self.sweep_dirty.add(key)
                if key not in self.sweep_dirty:
                    return
        finally:
            self.sweep_tasks.pop(key, None)

    async def sync_sweep(self, key: Key) -> None:
        body = self.indexes.sweep(key)
        if body is None:
            return
        with self.metrics.time_reconcile("Sweep"):
            if await refuse_invalid(self, SWEEPS, body):
                return
            sweep = Sweep.model_validate(self.effective(SWEEPS, body))
            children = self.indexes.children(key)
            children += self.creations.unseen(key, children)
            await self._fail_corrupt(key[0], children)
            actions = reconcile_sweep(sweep, children, self.clock())
            if self.shared_clusters.wanted(sweep, actions.done):
                await self.call(self.shared_clusters.sync, sweep, actions.done)

            async def create(manifest: dict[str, Any]) -> None:
                async with self.create_limit:
                    await self.call(self.kube.create, RLEXPERIMENTS, key[0], manifest)
                self.creations.remember(key, manifest)

            await asyncio.gather(*(create(m) for m in actions.create))
            for name, patch in actions.patches:
                await self.call(self.kube.patch, RLEXPERIMENTS, key[0], name, patch)
            await self.write_status(SWEEPS, body, actions.status.dump())
            self.metrics.observe_sweep(*key, actions.status)
            if sweep.spec.tracking or sweep.spec.template.tracking:
                tracked = sweep.model_copy(update={"status": actions.status})
                await self.call(self.tracking.sweep, tracked)

    async def _fail_corrupt(self, namespace: str, children: list[Body]) -> None:
        """Mark Failed each child the sweep cannot read (the plan counts it as failed)."""
        now = self.clock()
        for name, message in corrupt_children(children, lambda c: trial_problem(c, now)):
            body = self.indexes.experiment((namespace, name))
            if body is not None:
                generation = body["metadata"].get("generation")
                status = failed(None, message, generation, now).dump()
                await self.write_status(RLEXPERIMENTS, body, status, FAILED_FIELDS)

    def forget_sweep(self, key: Key) -> None:
        self.errors.forget(f"sweep {key[0]}/{key[1]}")
        self.metrics.forget_sweep(*key)
        self.writer.forget((SWEEPS.plural, *key))
        self.creations.forget(key)
        self.sweep_dirty.discard(key)
        self.shared_clusters.forget(key)
