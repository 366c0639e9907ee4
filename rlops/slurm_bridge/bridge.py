"""The SLURM bridge: runs the RLExperiments placed on its cluster as SLURM jobs.

One `poll()` lists the experiments of the bridge's namespaces, claims new ones, cancels
what is being deleted, observes every tracked job with one batched SLURM call, asks
`rlops.lifecycle.decide` what each experiment's next step is, and carries it out
(`BridgeRuns`: submit, end with a checkpoint, follow). `run()` repeats it every poll
interval. The annotations mean what they mean on every backend (`rlops.api.annotations`,
`rlops.lifecycle.machine`).

Submission is idempotent: `SlurmBackend.submit` adopts an existing job of the
experiment's name (which carries its uid) and attempt (in the job's comment) before it
calls sbatch, so a bridge killed between sbatch and the status update never submits
twice, and a job of an earlier attempt is never taken for the next one. Deleting an
experiment cancels its jobs outright. Status writes are merge patches that delete with
null what the new status no longer has (e.g. a RayJob's `backendRef.name` after a trial
moved here).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from rlops.api.annotations import ANNOTATION_PAUSE
from rlops.api.experiment import Backend, BackendRef, Phase, RLExperiment, RLExperimentStatus
from rlops.api.ratelimit import ErrorLog
from rlops.api.runinfo import RunFileError
from rlops.backends.base import work_key
from rlops.backends.slurm import (
    FINISHED_STATES,
    SlurmBackend,
    SlurmExperiments,
    SlurmRefused,
    SlurmUnavailable,
    queue_wait_seconds,
)
from rlops.lifecycle import Observation, Requests, decide
from rlops.lifecycle.pausepoint import at_pause_point
from rlops.metrics import RlopsMetrics
from rlops.slurm_bridge.lease import Lease
from rlops.slurm_bridge.packs import PackingRuns
from rlops.slurm_bridge.runs import PollReport, slurm_ref
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import Conflict, ExperimentStore

__all__ = ["FINISHED_STATES", "SlurmBridge", "queue_wait_seconds"]

CLAIMED_BY = "rlops.dev/claimed-by"
FINALIZER = "slurm.rlops.dev/cancel"

log = logging.getLogger("rlops.slurm_bridge")


def experiment_key(meta: dict[str, Any]) -> str:
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Tracked:
    """An experiment whose job the poll observes before the lifecycle decides."""

    body: dict[str, Any]
    experiment: RLExperiment
    ref: BackendRef


class SlurmBridge(PackingRuns):
    """The bridge's reconcile loop over an ExperimentStore and a SlurmBackend."""

    def __init__(
        self,
        store: ExperimentStore,
        backend: SlurmBackend,
        settings: BridgeSettings,
        *,
        metrics: RlopsMetrics | None = None,
        clock: Callable[[], str] = utc_now,
        on_submitted: Callable[[RLExperiment, BackendRef], None] | None = None,
        lease: Lease | None = None,
    ) -> None:
        experiments = SlurmExperiments(backend, settings.missing_polls)
        super().__init__(store, experiments, backend.settings, clock, metrics, on_submitted)
        self.settings = settings
        self.lease = lease  # with one, only its holder polls and stale claims are taken over
        self.claim = f"{settings.cluster}/{settings.bridge_id}"
        self._waited: set[str] = set()  # job ids whose queue wait has been observed
        self._job_states: dict[str, str] = {}  # experiment -> its job's last SLURM state
        self._stop = threading.Event()
        self._polled = threading.Event()
        self.errors = ErrorLog(log)

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        """Poll until `stop()`; a failed poll is logged and retried next interval."""
        while not self._stop.is_set():
            try:
                self.timed_poll()
                self.errors.forget("slurm")  # the next outage is logged at once
            except SlurmUnavailable as exc:
                message = f"SLURM unavailable, retrying next poll: {exc}"
                self.errors.log("slurm", message, logging.WARNING)
            except Exception as exc:
                self.errors.log("poll", f"poll failed: {exc!r}", exc=exc)
            self._stop.wait(self.settings.poll_interval_seconds)

    def stop(self) -> None:
        self._stop.set()

    def ready(self) -> bool:
        """True once a poll has completed (the bridge's /readyz)."""
        return self._polled.is_set()

    def timed_poll(self) -> PollReport:
        """One poll, timed as a reconcile of kind `SlurmPoll` when there are metrics."""
        if self.metrics is None:
            return self.poll()
        with self.metrics.time_reconcile("SlurmPoll"):
            return self.poll()

    def poll(self) -> PollReport:
        report = PollReport()
        if self.lease is not None and not self.lease.acquire():
            self.errors.log("lease", "another bridge holds this cluster's lease; standing by",
                            logging.INFO)  # fmt: skip
            self._polled.set()
            return report
        tracked: list[Tracked] = []
        listed: set[str] = set()
        for namespace in self.settings.namespaces:
            for body in self.store.list(namespace):
                if not self._placed_here(body):
                    continue
                listed.add(experiment_key(body["metadata"]))
                try:
                    item = self._prepare(body, report)
                except Conflict as exc:
                    log.info("skipped until next poll: %s", exc)
                    continue
                except SlurmUnavailable:
                    raise
                except Exception as exc:
                    self._isolate(body, exc, report)
                    continue
                if item is not None:
                    tracked.append(item)
        tracked += [Tracked(*packed) for packed in self.submit_packs(report)]  # trialsPerJob
        observed = self.backend.observe([(self._as_stored(item), item.ref) for item in tracked])
        for item in tracked:
            key = work_key(item.experiment)
            if key not in observed:
                continue  # SLURM did not report its job, which is not known to be gone yet
            work = observed[key]
            self._observe_job(item, work)
            try:
                self._follow(item, work, report)
            except Conflict as exc:
                log.info("skipped until next poll: %s", exc)
            except SlurmUnavailable:
                raise
            except Exception as exc:
                self._isolate(item.body, exc, report)
        report.tracked = len(tracked)
        for gone in self._job_states.keys() - listed:
            del self._job_states[gone]
        if self.metrics is not None:
            states = Counter(self._job_states.values())
            self.metrics.observe_slurm_jobs(self.settings.cluster, states)
            self.metrics.mark_bridge_poll(self.settings.cluster)
        self._polled.set()
        return report

    @staticmethod
    def _as_stored(item: Tracked) -> RLExperiment:
        """The experiment with the status last written (a job submitted in this poll)."""
        status = RLExperimentStatus.model_validate(item.body.get("status") or {})
        return item.experiment.model_copy(update={"status": status})

    def _follow(self, item: Tracked, work: Observation | None, report: PollReport) -> None:
        status = RLExperimentStatus.model_validate(item.body.get("status") or {})
        self._step(item.body, item.experiment, status, work, report)

    def _step(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        status: RLExperimentStatus,
        work: Observation | None,
        report: PollReport,
    ) -> Tracked | None:
        """Decide and carry out the next step; a job just submitted is observed next. A
        run told its pause point (`rlops.dev/pause-at`) that ended there is held Paused by
        it, as on Kubernetes, until its sweep promotes it."""
        self.flush_history(body, experiment)
        annotations = experiment.metadata.annotations
        requests = Requests.from_annotations(annotations)
        ended = self.run_end(experiment, status, work)
        requests, work = at_pause_point(requests, work, annotations, *ended)
        step = decide(status, requests, work, submitted=slurm_ref(status) is not None)
        submitted = self.carry_out(body, experiment, step, work, report)
        return Tracked(body, experiment, submitted) if submitted is not None else None

    def _isolate(self, body: dict[str, Any], exc: Exception, report: PollReport) -> None:
        """One experiment's failure is its own: a fault of its files or spec (a storage path
        the bridge cannot create, result.json a directory, progress.jsonl a FIFO) makes it
        Failed with the reason; anything else (an API error) is retried next poll. Either
        way the poll goes on with the others."""
        meta = body.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if not isinstance(
            exc, RunFileError | SlurmRefused | OSError | ValueError | TypeError | KeyError
        ):
            self.errors.log(key, f"{key}: skipped until next poll: {exc!r}")
            return
        message = f"{type(exc).__name__}: {exc}"[:1000]
        self.errors.log(key, f"{key} failed: {message}", exc=exc)
        try:
            old = RLExperimentStatus.model_validate(body.get("status") or {})
            if old.phase.finished or meta.get("deletionTimestamp"):
                return
            self.fail(body, message, report)
        except Exception as again:
            self.errors.log(key, f"{key}: its Failed status was not written: {again!r}")

    def _observe_job(self, item: Tracked, work: Observation | None) -> None:
        """For the metrics: the job's SLURM state (its observation's reason), and its wait
        in the queue, once, the first poll that sees it started."""
        if work is None or not work.reason or work.reason == "RunFileError":
            return
        self._job_states[experiment_key(item.body["metadata"])] = work.reason
        job_id = item.ref.job_id or ""
        if self.metrics is None or work.waited is None or job_id in self._waited:
            return
        self._waited.add(job_id)
        self.metrics.observe_queue_wait(self.settings.cluster, work.waited)

    # --- one experiment ----------------------------------------------------------------

    def _placed_here(self, body: dict[str, Any]) -> bool:
        placement = (body.get("spec") or {}).get("placement") or {}
        slurm = placement.get("slurm") or {}
        return bool(
            placement.get("backend") == Backend.SLURM.value
            and slurm.get("cluster", "default") == self.settings.cluster
        )

    def _prepare(self, body: dict[str, Any], report: PollReport) -> Tracked | None:
        """Deletion, claim, stop, pause, new attempts and submission; returns what to observe."""
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        annotations = meta.get("annotations") or {}
        claimed = annotations.get(CLAIMED_BY)
        if meta.get("deletionTimestamp"):  # whoever claimed it: its jobs are ours to cancel
            self._finalize(body, report)
            return None
        if claimed is not None and claimed != self.claim:
            if self.lease is None or not claimed.startswith(f"{self.settings.cluster}/"):
                return None  # another bridge runs it
            # This bridge holds the cluster's lease: the claim of another id is stale.
            log.info("%s/%s: taking over the claim of %s", namespace, name, claimed)
            takeover: dict[str, Any] = {"annotations": {CLAIMED_BY: self.claim}}
            body = self.store.patch_metadata(namespace, name, takeover, meta["resourceVersion"])
            meta, claimed = body["metadata"], self.claim
        try:
            experiment = RLExperiment.model_validate(body)
        except ValidationError as exc:
            old = RLExperimentStatus.model_validate(body.get("status") or {})
            if not old.phase.finished:
                self.fail(body, f"invalid RLExperiment: {exc.errors()[0]['msg']}", report)
            return None
        if claimed is None:
            finalizers = [*(meta.get("finalizers") or []), FINALIZER]
            patch = {"annotations": {CLAIMED_BY: self.claim}, "finalizers": finalizers}
            body = self.store.patch_metadata(namespace, name, patch, meta["resourceVersion"])
        status = experiment.status or RLExperimentStatus()
        ref = slurm_ref(status)
        if ref is not None and not status.phase.finished:
            pausing = status.phase is Phase.PAUSED and ANNOTATION_PAUSE in annotations
            if not pausing:
                return Tracked(body, experiment, ref)  # the lifecycle decides on what SLURM says
        return self._step(body, experiment, status, None, report)

    def _finalize(self, body: dict[str, Any], report: PollReport) -> None:
        """Cancel the job of an experiment being deleted, then let it go."""
        meta = body["metadata"]
        finalizers = meta.get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        ref = ((body.get("status") or {}).get("backendRef") or {}).get("jobId")
        try:
            experiment: RLExperiment | None = RLExperiment.model_validate(body)
        except ValidationError:
            experiment = None
        job = BackendRef(kind="SlurmJob", job_id=ref) if ref else None
        report.cancelled += self.backend.cancel(experiment, job)
        remaining = [f for f in finalizers if f != FINALIZER]
        self.store.patch_metadata(meta["namespace"], meta["name"], {"finalizers": remaining},
                                  meta["resourceVersion"])  # fmt: skip
        self.errors.forget(f"{meta['namespace']}/{meta['name']}")
        if self.metrics is not None:
            self.metrics.forget_experiment(meta["namespace"], meta["name"])
