"""`rlops run --backend slurm`: trials as SLURM jobs, through the SLURM backend.

`SlurmRunBackend`, the `ExperimentBackend` the runner drives on SLURM, over `SlurmBackend`:
submit submits the trial's RLExperiment (its batch script runs the runtime in the trial's
run directory, `Submission.run_dir`, which must be on a filesystem the compute nodes
share), observe is one batched `squeue` for every running trial, end is SIGTERM to the
job's batch shell alone (`scancel --batch --signal=TERM`: the runtime ends its iteration,
checkpoints while Ray still runs, and exits 75; a job still queued is cancelled), cancel
is `scancel`. SLURM schedules the jobs, so there is always room here; `parallelism` still
caps them. (The bridge's `SlurmExperiments` keeps its jobs in its own run directories
and reads their state from the experiments' status; this one, from the run's records.)

A pause is a stop here (a checkpoint, exit 75 recorded); the trial's record
makes it Paused rather than Stopped. A launch with a pause point (ASHA's promotion
variant: its rung) carries it in its script (`RLOPS_PAUSE_AT_ITERATION`; an array, per
task): the runtime pauses itself there, so no iteration runs past the rung. A resume is a
new sbatch of the next launch in the same run directory, which continues from that
checkpoint.

Trials started together whose batch directives are equal (a sweep's round) go to SLURM
as one job array, one task per trial (`123_4`); a lone trial stays a plain job. Each
task is tracked, stopped (`scancel --batch --signal=TERM 123_4`) and mapped onto its
trial's phase like a job.

A second `rlops run` submits nothing twice: `slurm-job.json` in the run directory names
the job (or array task) of the trial's launch, which is adopted while SLURM still queues
or runs it; and job names carry a uid derived from the run directories (an array's from
all of its tasks' and their attempts), looked up before sbatch, for a runner killed
between sbatch and its records. A retry never adopts its failed launch's job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rlops.api import Backend, Phase, ResourcesSpec, RLExperiment
from rlops.api.experiment import BackendRef
from rlops.api.runinfo import PAUSED_REASON, ExitCode, RunFileError, read_result
from rlops.backends.base import (
    EndKind,
    ExperimentBackend,
    Observation,
    Refused,
    Submission,
    tracked,
    work_key,
)
from rlops.backends.slurm import (
    ArrayTask,
    JobObservation,
    SlurmBackend,
    SlurmUnavailable,
    array_key,
    experiment_phase,
    pack_exit,
    pack_slots,
)
from rlops.backends.slurm.script import slurm_placement

JOB_RECORD = "slurm-job.json"  # the trial's latest job: {"jobId": "123_4", "attempt": 1}

log = logging.getLogger("rlops.runner")


def run_uid(run_dir: Path) -> str:
    """A stable uid for the trial in `run_dir`: the same on every `rlops run`."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()
    return str(uuid.UUID(digest[:32]))


def ended_job(
    phase: Phase, result_code: int | None, stopped: bool, paused_itself: bool = False
) -> Observation:
    """How a finished job ended, as the lifecycle sees an ended run (`result_code`: the
    exit code its result.json records, kept as the launch's exit code).

    A job we ended (a stop or a pause) checkpointed and exited 75, or was cancelled while
    queued: it ended at a checkpoint (Paused), which the trial's record turns into Stopped
    or Paused; unless it reached its budget before the signal (result.json says it
    succeeded), or its training failed. A job someone else cancelled failed. A job that
    reached its pause point checkpointed and ended by itself: Paused.
    """
    if phase == Phase.SUCCEEDED:
        return _ended(Phase.SUCCEEDED, result_code)
    if paused_itself:
        return _ended(Phase.PAUSED, result_code)
    failed = result_code in (ExitCode.INVALID, ExitCode.FAILED)
    if stopped and not failed:
        return _ended(Phase.SUCCEEDED if result_code == ExitCode.SUCCEEDED else Phase.PAUSED,
                      result_code)  # fmt: skip
    return _ended(Phase.FAILED, result_code)


def _ended(phase: Phase, code: int | None) -> Observation:
    message = {Phase.SUCCEEDED: "succeeded", Phase.PAUSED: "ended at a checkpoint"}
    return Observation(phase, message.get(phase, "failed"), terminal=True, exit_code=code)


def _run_dir(submission: Submission) -> Path:
    if submission.run_dir is None:
        name = submission.experiment.metadata.name
        raise Refused(f"{name}: `rlops run` on SLURM needs the trial's run directory")
    return submission.run_dir


def _task(experiment: RLExperiment, submission: Submission) -> ArrayTask:
    return ArrayTask(experiment, _run_dir(submission), submission.attempt,
                     submission.pause_at, submission.previous)  # fmt: skip


def _experiment(submission: Submission) -> RLExperiment:
    """The trial's experiment, with a uid that is the same on every `rlops run`."""
    experiment = submission.experiment
    meta = experiment.metadata.model_copy(update={"uid": run_uid(_run_dir(submission))})
    return experiment.model_copy(update={"metadata": meta})


@dataclass
class _Job:
    experiment: RLExperiment
    ref: BackendRef
    run_dir: Path
    stopped: bool = False
    packed: bool = False  # one of several trials of a job (trialsPerJob)


def write_job_record(run_dir: Path, job_id: str, attempt: int, packed: bool = False) -> None:
    tmp = run_dir / f".{JOB_RECORD}.tmp"
    body: dict[str, object] = {"jobId": job_id, "attempt": attempt}
    if packed:
        body["packed"] = True
    tmp.write_text(json.dumps(body))
    tmp.replace(run_dir / JOB_RECORD)


def _job_record(run_dir: Path) -> dict[str, object]:
    try:
        body = json.loads((run_dir / JOB_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def read_job_id(run_dir: Path) -> str | None:
    job_id = _job_record(run_dir).get("jobId")
    return job_id if isinstance(job_id, str) and job_id else None


class SlurmRunBackend:
    """The runner's trials as SLURM jobs (see the module)."""

    backend = Backend.SLURM

    def __init__(self, slurm: SlurmBackend, arrays: bool | None = None) -> None:
        self.slurm = slurm
        self.arrays = slurm.settings.arrays if arrays is None else arrays
        self._jobs: dict[str, _Job] = {}  # by work_key
        self._ended: dict[str, Observation] = {}  # how each one's last job ended

    def check(self, name: str, resources: ResourcesSpec) -> None:
        return None  # SLURM decides what fits.

    def submit(self, submission: Submission) -> BackendRef:
        (answer,) = self.submit_many([submission])
        if isinstance(answer, Refused):
            raise answer
        return answer

    def submit_many(self, submissions: Sequence[Submission]) -> list[BackendRef | Refused]:
        """Adopt what still runs; submit the rest, as one array per set of equal directives."""
        experiments = [_experiment(s) for s in submissions]
        refs = self._adoptable(submissions, experiments)
        groups: dict[object, list[int]] = defaultdict(list)
        for i, (submission, experiment) in enumerate(zip(submissions, experiments, strict=True)):
            if i not in refs:
                task = _task(experiment, submission)
                pack = slurm_placement(experiment).trials_per_job > 1
                key = array_key(task, self.slurm.settings) if self.arrays or pack else i
                groups[key].append(i)
        # An adopted job of a packed launch is tracked as packed (its slurm-job.json says so).
        packed = {i for i in refs if _job_record(_run_dir(submissions[i])).get("packed") is True}
        for members in groups.values():
            per_job = slurm_placement(experiments[members[0]]).trials_per_job
            if per_job > 1:
                # Retries and resumes run alone; fresh trials go K to a job.
                fresh = [i for i in members if not submissions[i].previous]
                members = [i for i in members if submissions[i].previous]
                for start in range(0, len(fresh), per_job):
                    chunk = fresh[start : start + per_job]
                    if len(chunk) == 1:
                        members.append(chunk[0])
                        continue
                    tasks = [_task(experiments[i], submissions[i]) for i in chunk]
                    ref = self.slurm.submit_pack(pack_slots(tasks))
                    for i in chunk:
                        refs[i] = ref
                    packed.update(chunk)
                if not members:
                    continue
            if len(members) == 1:
                (i,) = members
                submission = submissions[i]
                # A job of an ended launch is never adopted again: a retry submits anew.
                refs[i] = self.slurm.submit(
                    experiments[i],
                    _run_dir(submission),
                    previous_jobs=submission.previous,
                    attempt=submission.attempt,
                    pause_at=submission.pause_at,
                )
                continue
            tasks = [_task(experiments[i], submissions[i]) for i in members]
            for i, ref in zip(members, self.slurm.submit_array(tasks), strict=True):
                refs[i] = ref
        answers: list[BackendRef | Refused] = []
        for i, submission in enumerate(submissions):
            ref, run_dir, name = refs[i], _run_dir(submission), work_key(experiments[i])
            write_job_record(run_dir, ref.job_id or "", submission.attempt, i in packed)
            self._jobs[name] = _Job(experiments[i], ref, run_dir, packed=i in packed)
            self._ended.pop(name, None)
            answers.append(ref)
        return answers

    def _adoptable(
        self, submissions: Sequence[Submission], experiments: Sequence[RLExperiment]
    ) -> dict[int, BackendRef]:
        """Jobs of earlier, unfinished launches (a killed runner's) SLURM still queues or
        runs, by submission index: one batched look for all of them."""
        known = {}
        for i, submission in enumerate(submissions):
            job_id = read_job_id(_run_dir(submission))
            if job_id is not None and job_id not in submission.previous:
                known[i] = job_id
        if not known:
            return {}
        seen = self.slurm.client.jobs(known.values())
        adopted = {}
        for i, job_id in known.items():
            job = seen.get(job_id)
            phase = experiment_phase(experiments[i], job_id, job, _run_dir(submissions[i]))
            if job is not None and not phase.terminal:
                cluster = slurm_placement(experiments[i]).cluster
                adopted[i] = BackendRef(kind="SlurmJob", cluster=cluster, job_id=job_id)
        return adopted

    def observe(
        self, work: Sequence[tuple[RLExperiment, BackendRef | None]]
    ) -> dict[str, Observation | None]:
        """Running, or how its job ended; one batched look. While slurmctld is busy or
        restarting, the running ones are not known (look again next poll)."""
        keys = [work_key(experiment) for experiment, _ in work]
        gone = [k for k in keys if k not in self._jobs and k in self._ended]
        seen_ended: dict[str, Observation | None] = {k: self._ended[k] for k in gone}
        jobs = [(key, self._jobs[key]) for key in keys if key in self._jobs]
        if not jobs:
            return seen_ended
        try:
            seen = self.slurm.observe(job.ref for _, job in jobs)
        except SlurmUnavailable:
            return seen_ended
        answer: dict[str, Observation | None] = dict(seen_ended)
        for key, job in jobs:
            outcome = self._outcome(key, job, seen.get(job.ref.job_id or ""))
            if outcome is None:
                answer[key] = Observation(Phase.RUNNING, "running", name=f"job {job.ref.job_id}")
                continue
            answer[key] = self._ended[key] = outcome
            del self._jobs[key]
        return answer

    def _outcome(self, key: str, job: _Job, observed: JobObservation | None) -> Observation | None:
        """How the job ended; None while it runs."""
        job_id = job.ref.job_id or ""
        try:
            if job.packed:
                return self._packed_end(job, job_id, observed)
            seen_phase = experiment_phase(job.experiment, job_id, observed, job.run_dir)
        except (RunFileError, OSError) as exc:  # this trial's files alone: it failed
            log.warning("trial %s: %s", job.experiment.metadata.name, exc)
            return Observation(Phase.FAILED, str(exc), terminal=True)
        phase = seen_phase.phase
        if observed is None and job.stopped:
            phase = Phase.STOPPED  # An array task cancelled while pending leaves no trace.
        elif not seen_phase.terminal:
            return None
        result = read_result(job.run_dir)
        code = result.exit_code if result is not None else None
        paused = (  # the job's own exit code too: result.json may be an earlier launch's
            result is not None
            and result.stop_reason == PAUSED_REASON
            and observed is not None
            and observed.exit_code == ExitCode.REQUEUE
        )
        return ended_job(phase, code, job.stopped, paused)

    def _packed_end(
        self, job: _Job, job_id: str, observed: JobObservation | None
    ) -> Observation | None:
        """A packed trial ends when its job records its exit code (the job may go on with
        the others), or when the job ended without one (killed, cancelled): None until."""
        code = pack_exit(job.run_dir, job_id)
        if code is None:
            if experiment_phase(job.experiment, job_id, observed, job.run_dir).terminal:
                return ended_job(Phase.STOPPED if job.stopped else Phase.FAILED, None, job.stopped)
            return None
        result = read_result(job.run_dir)
        paused = (
            code == ExitCode.REQUEUE
            and result is not None
            and (result.stop_reason == PAUSED_REASON)
        )
        phase = Phase.SUCCEEDED if code == ExitCode.SUCCEEDED else Phase.FAILED
        return ended_job(phase, code, job.stopped, paused)

    def end(self, experiment: RLExperiment, ref: BackendRef | None, kind: EndKind) -> list[str]:
        """Checkpoint and end: SIGTERM to the batch shell (a packed trial's alone)."""
        return self._end(experiment, ref, self.slurm.terminate)

    def cancel(self, experiment: RLExperiment | None, ref: BackendRef | None) -> list[str]:
        """`scancel` (a packed trial alone is stopped: the others of its job go on)."""
        return self._end(experiment, ref, self.slurm.cancel)

    def _end(
        self,
        experiment: RLExperiment | None,
        ref: BackendRef | None,
        alone: Callable[[BackendRef], object],
    ) -> list[str]:
        job = tracked(self._jobs, experiment, ref, lambda j: j.ref)
        if job is None:
            return []
        job.stopped = True
        if job.packed:  # the others of its job go on
            self.slurm.stop_packed(job.run_dir, job.ref.job_id or "")
        else:
            alone(job.ref)
        return [job.ref.job_id or ""]

    def close(self) -> None:
        return None  # Jobs belong to SLURM; a later run picks them up again.


# mypy checks here that SlurmRunBackend implements the protocol the drivers drive.
_IMPLEMENTS: Callable[[SlurmBackend], ExperimentBackend] = SlurmRunBackend
