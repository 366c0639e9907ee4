"""The bridge's side of one experiment's lifecycle: it carries out the `Step` that
`rlops.lifecycle.decide` returns — submit (or adopt) a job, end it with a checkpoint,
follow it — and writes the status the lifecycle builds. The rules live there.

Ending a job is SIGTERM to its batch shell alone (`SlurmClient.terminate`): the runtime
finishes its iteration and checkpoints while Ray still runs, then the job exits 75; a job
that has not started is cancelled. A stop or pause ends every unfinished job of the
experiment's name (a job submitted just before a crash has no reference yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlops.api.annotations import ANNOTATION_HISTORY
from rlops.api.experiment import (
    Backend,
    BackendRef,
    RLExperiment,
    RLExperimentStatus,
)
from rlops.api.mergepatch import map_patch
from rlops.api.runinfo import (
    PROGRESS_FILE,
    RESULT_FILE,
    ProgressRecord,
    ProgressTail,
    RunResult,
    read_result,
)
from rlops.backends.base import ExperimentBackend, Refused, Submission
from rlops.backends.slurm import SlurmSettings, default_run_dir
from rlops.lifecycle import (
    Action,
    Observation,
    Step,
    apply_step,
    experiment_result,
    objective_metric,
    progress_of,
    refused,
    submitted_status,
)
from rlops.lifecycle.history import HISTORY_POINTS, merged_history
from rlops.metrics import RlopsMetrics
from rlops.slurm_bridge.store import Conflict, ExperimentStore
from rlops.sweep.trials import LABEL_SWEEP
from rlops.tracking.drivers import KubeTracking, trial_snapshot


@dataclass
class PollReport:
    """What one poll did (for logs, tests and benchmarks)."""

    tracked: int = 0
    submitted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    status_writes: int = 0


class BridgeRuns:
    """Steps of the lifecycle, carried out on SLURM for the experiments of one store."""

    def __init__(
        self,
        store: ExperimentStore,
        backend: ExperimentBackend,
        slurm: SlurmSettings,
        clock: Callable[[], str],
        metrics: RlopsMetrics | None,
        on_submitted: Callable[[RLExperiment, BackendRef], None] | None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.slurm = slurm  # where run directories are
        self.clock = clock
        self.metrics = metrics
        self.on_submitted = on_submitted  # a test hook between sbatch and the status write
        self.tracking = KubeTracking()
        self._tails: dict[str, ProgressTail] = {}
        self._untracked: dict[str, list[ProgressRecord]] = {}  # Tracking failed: try again.
        self._unwritten: dict[str, list[ProgressRecord]] = {}  # History not written: again.

    def carry_out(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        step: Step,
        work: Observation | None,
        report: PollReport,
    ) -> BackendRef | None:
        """Do what `step` says, then write the status that follows; the job submitted."""
        status = RLExperimentStatus.model_validate(body.get("status") or {})
        ref = slurm_ref(status)
        if step.action is Action.SUBMIT:
            assert step.attempt is not None
            return self._submit(body, experiment, status, step.attempt, report, ref, step.resumed)
        if step.track:
            assert ref is not None and work is not None
            self._track(body, experiment, status, step, work, report)
            return None
        update: dict[str, Any] = {}
        if step.ends:
            assert step.end is not None
            report.cancelled += self.backend.end(experiment, ref, step.end)
        if step.end in ("stop", "pause") and step.ends:
            # The last progress: a pause keeps the tail for the run that resumes it.
            paused = step.end == "pause"
            key, path = tail_key(experiment), self.run_dir(experiment) / PROGRESS_FILE
            kept = self._tails.pop(key, None) or ProgressTail(path)
            if paused:
                self._tails[key] = kept
            record = kept.read()
            self._write_history(body, experiment, key, kept.fresh)
            if record is not None:
                update["progress"] = progress_of(record, experiment.spec.stop)
            result = read_result(self.run_dir(experiment)) if work and work.terminal else None
            if result is not None:  # it ended by itself (at its pause point): its outcome
                metric = objective_metric(experiment.metadata.annotations)
                run_dir = self.run_dir(experiment)
                update["result"] = experiment_result(result, metric, kept.last, run_dir)
        elif step.action is Action.CANCEL and ref is not None:
            self.backend.cancel(None, ref)  # the referenced job alone
        new = apply_step(status, step, work, Backend.SLURM, experiment.metadata.generation,
                         self.clock(), **update)  # fmt: skip
        self.write_status(body, new, report)
        return None

    def fail(self, body: dict[str, Any], message: str, report: PollReport, **update: Any) -> None:
        """Failed with a reason, before or at submission (see `rlops.lifecycle.refused`)."""
        old = RLExperimentStatus.model_validate(body.get("status") or {})
        generation = (body.get("metadata") or {}).get("generation")
        new = apply_step(old, refused(message), None, Backend.SLURM, generation, self.clock(),
                         **update)  # fmt: skip
        self.write_status(body, new, report)

    def run_dir(self, experiment: RLExperiment) -> Path:
        return default_run_dir(experiment, self.slurm)

    def _submit(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        status: RLExperimentStatus,
        attempt: int,
        report: PollReport,
        previous: BackendRef | None,
        resumed: bool,
    ) -> BackendRef | None:
        """Submit (or adopt the job of) `attempt`; `previous`: the earlier job, or with
        `resumed` the paused job of this attempt (whose result is set aside, and which the
        backend does not adopt, nor any other ended job of the attempt: earlier pauses)."""
        run_dir = self.run_dir(experiment)
        earlier = [previous.job_id] if previous is not None and previous.job_id else []
        if earlier:
            set_aside_result(run_dir, status.attempts, paused_job=earlier[0] if resumed else None)
        if resumed:
            tail = self._tails.pop(tail_key(experiment), None)
            record = (tail or ProgressTail(run_dir / PROGRESS_FILE)).read()
            if record is not None:  # the last iterations of the paused run
                status = status.model_copy(
                    update={"progress": progress_of(record, experiment.spec.stop)}
                )
        try:
            ref = self.backend.submit(Submission(experiment, attempt, tuple(earlier), resumed))
        except Refused as exc:
            self.fail(body, str(exc), report, attempts=attempt)
            return None
        self.submitted(body, experiment, status, ref, attempt, resumed, report)
        return ref

    def submitted(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        status: RLExperimentStatus,
        ref: BackendRef,
        attempt: int,
        resumed: bool,
        report: PollReport,
        note: str = "",
    ) -> None:
        """The status of an experiment whose job `ref` was just submitted (or adopted)."""
        report.submitted.append(f"{experiment.metadata.namespace}/{experiment.metadata.name}")
        if self.on_submitted is not None:
            self.on_submitted(experiment, ref)
        how = "resumed" if resumed else "submitted"
        message = f"{how} as SLURM job {ref.job_id} on cluster {ref.cluster}{note}"
        if attempt > 1:
            message += f" (attempt {attempt})"
        new = submitted_status(status, ref, attempt, message, Backend.SLURM,
                               experiment.metadata.generation, self.clock())  # fmt: skip
        self.write_status(body, new, report)

    def _track(
        self,
        body: dict[str, Any],
        experiment: RLExperiment,
        old: RLExperimentStatus,
        step: Step,
        work: Observation,
        report: PollReport,
    ) -> None:
        """The status follows the job: its phase, progress and, once it ended, its result."""
        run_dir = self.run_dir(experiment)
        uid = tail_key(experiment)
        tail = self._tails.setdefault(uid, ProgressTail(run_dir / PROGRESS_FILE))
        record = tail.read()
        result = read_result(run_dir) if work.terminal else None
        update: dict[str, Any] = {}
        if record is not None:
            update["progress"] = progress_of(record, experiment.spec.stop)
        if result is not None:
            metric = objective_metric(experiment.metadata.annotations)
            update["result"] = experiment_result(result, metric, tail.last, run_dir)
        self._write_history(body, experiment, uid, tail.fresh)
        new = apply_step(old, step, work, Backend.SLURM, experiment.metadata.generation,
                         self.clock(), **update)  # fmt: skip
        self.write_status(body, new, report)
        self._track_progress(experiment, uid, new, tail.fresh, result, run_dir)
        if work.terminal:
            self._tails.pop(uid, None)
        if self.metrics is not None:
            meta = experiment.metadata
            sweep = meta.labels.get("rlops.dev/sweep")
            self.metrics.observe_experiment(meta.namespace or "", meta.name or "", new, sweep)

    def run_end(
        self, experiment: RLExperiment, status: RLExperimentStatus, work: Observation | None
    ) -> tuple[str | None, int | None]:
        """The stop reason and last iteration of the current run: its result.json once its
        job ended (a new submission sets the last run's aside), else what the status holds."""
        if work is not None and work.terminal:
            result = read_result(self.run_dir(experiment))
            if result is not None:
                return result.stop_reason, result.iteration
        reason = status.result.stop_reason if status.result is not None else None
        iteration = status.progress.iteration if status.progress is not None else None
        return reason, iteration

    def flush_history(self, body: dict[str, Any], experiment: RLExperiment) -> None:
        """History that a conflict held back, written now (its run may have ended since)."""
        uid = tail_key(experiment)
        if uid in self._unwritten:
            self._write_history(body, experiment, uid, [])

    def _write_history(
        self, body: dict[str, Any], experiment: RLExperiment, uid: str, fresh: list[ProgressRecord]
    ) -> None:
        """A sweep trial's objective history (`rlops.dev/history`), which its Sweep's early
        stopping and PBT plan from, as the operator writes it for trials on Kubernetes;
        the records are kept for the next poll when the write conflicts."""
        records = self._unwritten.pop(uid, []) + fresh
        annotations = experiment.metadata.annotations
        if LABEL_SWEEP not in experiment.metadata.labels or not records:
            return
        metric = objective_metric(annotations)
        meta = body["metadata"]
        text = merged_history(meta.get("annotations") or {}, records, metric, HISTORY_POINTS)
        if text is None:
            return
        patch = {"annotations": {ANNOTATION_HISTORY: text}}
        try:
            written = self.store.patch_metadata(meta["namespace"], meta["name"], patch,
                                                meta["resourceVersion"])  # fmt: skip
        except Conflict:
            self._unwritten[uid] = records[-HISTORY_POINTS:]
            return
        body["metadata"] = written.get("metadata") or meta

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

    def write_status(
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
        version = self.store.patch_status(meta["namespace"], meta["name"], patch)
        body["status"] = new
        if version is not None:  # a metadata patch later in this poll is not refused for it
            meta["resourceVersion"] = version
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
