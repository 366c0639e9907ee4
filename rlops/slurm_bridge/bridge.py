"""The SLURM bridge: runs the RLExperiments placed on its cluster as SLURM jobs.

One `poll()` lists the experiments of the bridge's namespaces, claims new ones,
submits what has no job yet, cancels what is being deleted, observes every tracked
job with one batched SLURM call and writes each status that changed — all status
writes go through `_write_status`. `run()` repeats it every poll interval.

Submission is idempotent: `SlurmBackend.submit` adopts an existing job of the
experiment's name (which carries its uid) and attempt (in the job's comment) before it
calls sbatch, so a bridge killed between sbatch and the status update never submits
twice, and a job of an earlier attempt is never taken for the next one.

The operator's annotations mean the same here as on Kubernetes: `rlops.dev/stop`
ends the job once and ends in Stopped (`stopped: <reason>`, progress kept, never
submitted again); `rlops.dev/attempt: N` above `status.attempts` ends a job of the
earlier attempt that still runs ("replacing attempt N-1"), then submits attempt N into
the same run directory, where the runtime resumes from the latest checkpoint as a
retried RayJob does. `rlops.dev/pause` ends the job as a stop does and ends in Paused
(`paused: <reason>`, not finished); removing it resumes: once the paused job has ended,
the same attempt is submitted again into the same run directory. A stop wins over a
pause. Ending a job is SIGTERM to its batch shell alone (`SlurmClient.terminate`): the
runtime finishes its iteration and checkpoints while Ray still runs, then the job exits
75; a job that has not started is cancelled. Deleting an experiment cancels its jobs
outright. Status writes are merge
patches that delete with null what the new status no longer has (e.g. a RayJob's
`backendRef.name` after a trial moved here).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from rlops.api.annotations import (
    ANNOTATION_PAUSE,
    ANNOTATION_STOP,
    pause_message,
    requested_attempt,
    stop_message,
)
from rlops.api.experiment import Backend, BackendRef, Phase, RLExperiment, RLExperimentStatus
from rlops.api.mergepatch import map_patch
from rlops.api.ratelimit import ErrorLog
from rlops.api.runinfo import (
    PROGRESS_FILE,
    RESULT_FILE,
    ProgressReader,
    ProgressRecord,
    RunFileError,
    RunResult,
    newer,
    read_result,
)
from rlops.backends.slurm import (
    JobObservation,
    ScriptError,
    SlurmBackend,
    SlurmRefused,
    SlurmUnavailable,
    SubmitError,
    default_run_dir,
    experiment_phase,
    job_name,
)
from rlops.metrics import RlopsMetrics
from rlops.slurm_bridge.lease import Lease
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.status import (
    failed_status,
    paused_status,
    progress_of,
    replacing_status,
    resuming_status,
    stopped_status,
    submitted_status,
    tracked_status,
)
from rlops.slurm_bridge.store import Conflict, ExperimentStore
from rlops.tracking.drivers import KubeTracking, trial_snapshot

CLAIMED_BY = "rlops.dev/claimed-by"
FINALIZER = "slurm.rlops.dev/cancel"
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                   "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED"}  # fmt: skip

log = logging.getLogger("rlops.slurm_bridge")


def queue_wait_seconds(job: JobObservation) -> float | None:
    """Seconds from submission to start; None until the job has started.

    SLURM reports a pending job's *expected* start time, and a job cancelled while
    pending gets its cancel time as start time, so a start counts only for a job that
    left PENDING with nodes allocated. A requeued job keeps its id and is counted once.
    """
    ran = job.state != "PENDING" and bool(job.nodes) and job.nodes != "(null)"
    if not ran or not job.submit_time or not job.start_time:
        return None
    try:
        submit, start = _instant(job.submit_time), _instant(job.start_time)
    except ValueError:
        return None
    return max(0.0, (start - submit).total_seconds())


def _instant(text: str) -> datetime:
    """A SLURM time (ISO, `Z` or naive local time as squeue prints it) as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.astimezone()


def experiment_key(meta: dict[str, Any]) -> str:
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class ProgressTail:
    """Reads progress.jsonl from where it stopped last time (ProgressReader: truncation,
    rotation, torn and over-long lines); keeps the latest record, never an older one."""

    reader: ProgressReader | None = None
    latest: ProgressRecord | None = None
    fresh: list[ProgressRecord] = field(default_factory=list)  # Read by the last `read`.

    def read(self, run_dir: Path) -> ProgressRecord | None:
        if self.reader is None:
            self.reader = ProgressReader(run_dir / PROGRESS_FILE)
        self.fresh = self.reader.read_new()
        for record in self.fresh:
            if newer(self.latest, record):
                self.latest = record
        return self.latest


@dataclass
class Tracked:
    """An experiment whose job the poll observes, and what its job's state decides:
    `track` its status, `replace` it with a newer attempt once it has ended, `pause` it
    unless it has ended already, or `resume` the paused experiment once it has ended."""

    body: dict[str, Any]
    experiment: RLExperiment
    ref: BackendRef
    then: Literal["track", "replace", "pause", "resume"] = "track"


@dataclass
class PollReport:
    """What one poll did (for logs, tests and benchmarks)."""

    tracked: int = 0
    submitted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    status_writes: int = 0


class SlurmBridge:
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
        self.store = store
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.on_submitted = on_submitted  # a test hook between sbatch and the status write
        self.lease = lease  # with one, only its holder polls and stale claims are taken over
        self.claim = f"{settings.cluster}/{settings.bridge_id}"
        self._tails: dict[str, ProgressTail] = {}
        self.tracking = KubeTracking()
        self._untracked: dict[str, list[ProgressRecord]] = {}  # Tracking failed: try again.
        self._waited: set[str] = set()  # job ids whose queue wait has been observed
        self._job_states: dict[str, str] = {}  # experiment -> its job's last SLURM state
        self._stop = threading.Event()
        self._polled = threading.Event()
        self.errors = ErrorLog(log)
        self._misses: dict[str, int] = {}  # job id -> polls in a row SLURM did not report it

    # --- the loop ----------------------------------------------------------------------

    def run(self) -> None:
        """Poll until `stop()`; a failed poll is logged and retried next interval."""
        while not self._stop.is_set():
            try:
                self.timed_poll()
            except SlurmUnavailable as exc:
                log.warning("SLURM unavailable, retrying next poll: %s", exc)
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
        jobs = self.backend.observe(item.ref for item in tracked)
        seen = {job_id for job_id in self._misses if job_id in jobs}
        for job_id in seen:
            del self._misses[job_id]
        for item in tracked:
            job = jobs.get(item.ref.job_id or "")
            if job is not None:
                self._job_states[experiment_key(item.body["metadata"])] = job.state
            try:
                if job is None and not self._confirmed_gone(item):
                    continue
                self._follow(item, job, report)
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
            self._observe_queue_waits(jobs.values())
            self.metrics.mark_bridge_poll(self.settings.cluster)
        self._polled.set()
        return report

    def _confirmed_gone(self, item: Tracked) -> bool:
        """Whether a job SLURM did not report has ended: its result.json says so, or it was
        missing `missing_polls` polls in a row (a garbled squeue answer, once, is no end)."""
        job_id = item.ref.job_id or ""
        run_dir = default_run_dir(item.experiment, self.backend.settings)
        misses = self._misses.get(job_id, 0) + 1
        if read_result(run_dir) is not None or misses >= self.settings.missing_polls:
            self._misses.pop(job_id, None)
            return True
        self._misses[job_id] = misses
        log.info("job %s not reported by SLURM (%d of %d polls)", job_id, misses,
                 self.settings.missing_polls)  # fmt: skip
        return False

    def _follow(self, item: Tracked, job: JobObservation | None, report: PollReport) -> None:
        if item.then == "replace":
            self._replace(item, job, report)
        elif item.then == "pause":
            self._pause(item, job, report)
        elif item.then == "resume":
            self._resume(item, job, report)
        else:
            self._track(item.body, item.experiment, item.ref, job, report)

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
            failed = failed_status(old, message, meta.get("generation"), self.clock())
            self._write_status(body, failed, report)
        except Exception as again:
            self.errors.log(key, f"{key}: its Failed status was not written: {again!r}")

    def _observe_queue_waits(self, jobs: Iterable[JobObservation]) -> None:
        """Each job's wait in the queue, once, the first poll that sees it started."""
        assert self.metrics is not None
        for job in jobs:
            wait = queue_wait_seconds(job)
            if wait is None or job.job_id in self._waited:
                continue
            self._waited.add(job.job_id)
            self.metrics.observe_queue_wait(self.settings.cluster, wait)

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
                message = f"invalid RLExperiment: {exc.errors()[0]['msg']}"
                self._write_status(body, failed_status(old, message, meta.get("generation"),
                                                       self.clock()), report)  # fmt: skip
            return None
        if claimed is None:
            finalizers = [*(meta.get("finalizers") or []), FINALIZER]
            patch = {"annotations": {CLAIMED_BY: self.claim}, "finalizers": finalizers}
            body = self.store.patch_metadata(namespace, name, patch, meta["resourceVersion"])
        status = experiment.status or RLExperimentStatus()
        ref = slurm_ref(status)
        stop = annotations.get(ANNOTATION_STOP)
        if stop is not None:
            if not status.phase.finished:
                self._end_experiment(body, experiment, status, ref, report, Phase.STOPPED, stop)
            return None  # stopped for good: never submitted again
        requested = requested_attempt(annotations)
        pause = annotations.get(ANNOTATION_PAUSE)
        if pause is not None and not status.phase.finished:
            if status.phase is Phase.PAUSED:
                return None  # nothing runs until it is resumed
            if ref is not None:
                return Tracked(body, experiment, ref, then="pause")
            self._end_experiment(body, experiment, status, None, report, Phase.PAUSED, pause)
            return None
        if status.phase is Phase.PAUSED:  # resumed: the same attempt runs again
            if ref is not None:
                return Tracked(body, experiment, ref, then="resume")
            attempt = max(requested, status.attempts, 1)
            return self._submit(body, experiment, status, attempt, report, resumed=True)
        if requested > status.attempts and ref is not None and status.attempts > 0:
            if status.phase.finished:  # the earlier attempt's job has ended
                return self._submit(body, experiment, status, requested, report, ref)
            return Tracked(body, experiment, ref, then="replace")
        if ref is not None:
            return None if status.phase.finished else Tracked(body, experiment, ref)
        if status.phase.finished and requested <= status.attempts:
            return None
        attempt = max(requested, status.attempts, 1)
        return self._submit(body, experiment, status, attempt, report)

    def _submit(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        status: RLExperimentStatus,
        attempt: int,
        report: PollReport,
        previous: BackendRef | None = None,
        resumed: bool = False,
    ) -> Tracked | None:
        """Submit (or adopt the job of) `attempt`; `previous`: the earlier attempt's job, or
        with `resumed` the paused job of this attempt (whose result is set aside, and which
        is not adopted, nor any other ended job of the attempt: earlier pauses)."""
        generation = experiment.metadata.generation
        run_dir = default_run_dir(experiment, self.backend.settings)
        earlier = [previous.job_id] if previous is not None and previous.job_id else []
        if earlier:
            set_aside_result(run_dir, status.attempts, paused_job=earlier[0] if resumed else None)
        if resumed:
            found = self.backend.client.find_by_name(job_name(experiment))
            earlier += [j.job_id for j in found if j.state in FINISHED_STATES]
        try:
            ref = self.backend.submit(experiment, run_dir, attempt=attempt, previous_jobs=earlier)
        except (ScriptError, SubmitError) as exc:
            failed = failed_status(status, str(exc), generation, self.clock(), attempts=attempt)
            self._write_status(body, failed, report)
            return None
        report.submitted.append(f"{experiment.metadata.namespace}/{experiment.metadata.name}")
        if self.on_submitted is not None:
            self.on_submitted(experiment, ref)
        new = submitted_status(status, ref, attempt, generation, self.clock(), resumed=resumed)
        self._write_status(body, new, report)
        return Tracked(body, experiment, ref)

    def _replace(self, item: Tracked, job: JobObservation | None, report: PollReport) -> None:
        """A newer attempt is requested while the job of the earlier one may still run."""
        experiment = item.experiment
        status = RLExperimentStatus.model_validate(item.body.get("status") or {})
        requested = requested_attempt(experiment.metadata.annotations)
        if job is not None and job.state not in FINISHED_STATES:
            replacing = replacing_status(status, requested, experiment.metadata.generation,
                                         self.clock())  # fmt: skip
            if status.message != replacing.message:  # signal once; the job ends on its own
                assert item.ref.job_id is not None
                self.backend.client.terminate(item.ref.job_id)
                report.cancelled.append(item.ref.job_id)
                self._write_status(item.body, replacing, report)
            return
        # Ended (or forgotten): the new attempt starts in the same run directory.
        self._submit(item.body, experiment, status, requested, report, item.ref)

    def _end_experiment(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        status: RLExperimentStatus,
        ref: BackendRef | None,
        report: PollReport,
        phase: Phase,
        reason: str,
    ) -> None:
        """`rlops.dev/stop` (phase Stopped) or `rlops.dev/pause` (Paused): end every active
        job of the experiment once, with a checkpoint, then write the phase; a pause keeps
        the progress tail for the run that resumes it."""
        for job_id in self._active_jobs(experiment, ref.job_id if ref else None):
            self.backend.client.terminate(job_id)
            report.cancelled.append(job_id)
        run_dir = default_run_dir(experiment, self.backend.settings)
        paused = phase is Phase.PAUSED
        key = tail_key(experiment)
        tail = self._tails.setdefault(key, ProgressTail()) if paused else self._tails.pop(key, None)
        record = (tail or ProgressTail()).read(run_dir)
        progress = progress_of(record, experiment.spec.stop) if record else None
        build, message = (
            (paused_status, pause_message) if paused else (stopped_status, stop_message)
        )
        new = build(status, message(reason), progress, experiment.metadata.generation, self.clock())
        self._write_status(body, new, report)

    def _pause(self, item: Tracked, job: JobObservation | None, report: PollReport) -> None:
        """A pause asked for while the job may run: a job that has ended keeps its outcome."""
        if job is None or job.state in FINISHED_STATES:
            self._track(item.body, item.experiment, item.ref, job, report)
            return
        status = RLExperimentStatus.model_validate(item.body.get("status") or {})
        reason = item.experiment.metadata.annotations[ANNOTATION_PAUSE]
        self._end_experiment(
            item.body, item.experiment, status, item.ref, report, Phase.PAUSED, reason
        )

    def _resume(self, item: Tracked, job: JobObservation | None, report: PollReport) -> None:
        """Resumed: once the paused job has ended (checkpointed), its attempt runs again."""
        status = RLExperimentStatus.model_validate(item.body.get("status") or {})
        generation = item.experiment.metadata.generation
        if job is not None and job.state not in FINISHED_STATES:
            assert item.ref.job_id is not None
            waiting = resuming_status(status, item.ref.job_id, generation, self.clock())
            self._write_status(item.body, waiting, report)
            return
        run_dir = default_run_dir(item.experiment, self.backend.settings)
        record = self._tails.pop(tail_key(item.experiment), ProgressTail()).read(run_dir)
        if record is not None:  # the last iterations of the paused run
            status = status.model_copy(
                update={"progress": progress_of(record, item.experiment.spec.stop)}
            )
        attempt = max(status.attempts, 1)
        self._submit(item.body, item.experiment, status, attempt, report, item.ref, resumed=True)

    def _active_jobs(self, experiment: RLExperiment | None, job_id: str | None) -> list[str]:
        """The referenced job, and any unfinished job of the experiment's name (a job
        submitted just before a crash has no reference yet)."""
        job_ids = {job_id} if job_id else set()
        if experiment is not None:
            found = self.backend.client.find_by_name(job_name(experiment))
            job_ids |= {j.job_id for j in found if j.state not in FINISHED_STATES}
        return sorted(job_ids)

    def _track(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        ref: BackendRef,
        job: JobObservation | None,
        report: PollReport,
    ) -> None:
        assert ref.job_id is not None
        run_dir = default_run_dir(experiment, self.backend.settings)
        phase = experiment_phase(experiment, ref.job_id, job, run_dir)
        meta = experiment.metadata
        uid = tail_key(experiment)
        tail = self._tails.setdefault(uid, ProgressTail())
        record = tail.read(run_dir)
        result = read_result(run_dir) if phase.terminal else None
        old = RLExperimentStatus.model_validate(body.get("status") or {})
        # Attempts: the job's own (from its comment) plus SLURM's requeues of it.
        attempts = max(old.attempts, job.attempt + job.restarts) if job else old.attempts
        new = tracked_status(old, ref, job, phase, record, result, experiment.spec.stop, run_dir,
                             experiment.metadata.generation, self.clock(), attempts)  # fmt: skip
        self._write_status(body, new, report)
        self._track_progress(experiment, uid, new, tail.fresh, result, run_dir)
        if phase.terminal:
            self._tails.pop(uid, None)
        if self.metrics is not None:
            sweep = meta.labels.get("rlops.dev/sweep")
            self.metrics.observe_experiment(meta.namespace or "", meta.name or "", new, sweep)

    def _track_progress(
        self,
        experiment: RLExperiment,
        uid: str,
        status: RLExperimentStatus,
        fresh: list[ProgressRecord],
        result: RunResult | None,
        run_dir: Path,
    ) -> None:
        """Records and results to `spec.tracking` (kept for the next poll if it fails)."""
        if not self.tracking.wanted(experiment, None):
            return
        records = self._untracked.pop(uid, []) + fresh
        snap = trial_snapshot(experiment, status.phase.value, records, result, str(run_dir))
        try:
            self.tracking.trial(experiment, None, snap)
        except Exception:
            self._untracked[uid] = records

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
        for job_id in self._active_jobs(experiment, ref):
            self.backend.client.cancel(job_id)
            report.cancelled.append(job_id)
        remaining = [f for f in finalizers if f != FINALIZER]
        self.store.patch_metadata(meta["namespace"], meta["name"], {"finalizers": remaining},
                                  meta["resourceVersion"])  # fmt: skip
        self.errors.forget(f"{meta['namespace']}/{meta['name']}")
        if self.metrics is not None:
            self.metrics.forget_experiment(meta["namespace"], meta["name"])

    def _write_status(
        self, body: dict[str, Any], status: RLExperimentStatus, report: PollReport
    ) -> None:
        """The one place the bridge writes status, and only when it changed.

        A merge patch: keys the new status lacks are sent as null, so nothing of another
        backend's status (a RayJob's `backendRef.name`) outlives the move to SLURM.
        """
        new = status.dump()
        patch = map_patch(body.get("status"), new)
        if not patch:
            return
        meta = body["metadata"]
        self.store.patch_status(meta["namespace"], meta["name"], patch)
        body["status"] = new
        report.status_writes += 1


def tail_key(experiment: RLExperiment) -> str:
    meta = experiment.metadata
    return meta.uid or f"{meta.namespace}/{meta.name}"


def slurm_ref(status: RLExperimentStatus) -> BackendRef | None:
    """The status's reference to a SLURM job; None for none or another backend's."""
    ref = status.backend_ref
    if ref is None or ref.kind != "SlurmJob" or not ref.job_id:
        return None
    return ref


def set_aside_result(run_dir: Path, attempt: int, paused_job: str | None = None) -> None:
    """Keep an earlier attempt's result.json as `result.attempt-<n>.json` (a paused run's
    as `result.attempt-<n>.paused-<job>.json`), so the next run is never judged by it (the
    runtime resumes from checkpoints, not from it)."""
    path = run_dir / RESULT_FILE
    paused = f".paused-{paused_job}" if paused_job else ""
    if path.exists():
        path.replace(run_dir / f"result.attempt-{attempt}{paused}.json")
