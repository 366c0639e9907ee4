"""`SlurmExperiments`: the `ExperimentBackend` the SLURM bridge drives.

It speaks of experiments where `SlurmBackend` speaks of jobs: submit (or adopt) an
attempt's job in the experiment's run directory, observe every referenced job in one
batched SLURM call as the lifecycle's `Observation`s (a job SLURM does not report ends
only when result.json says so, or after `missing_polls` looks in a row: a garbled squeue
answer, once, is no end; a run directory whose files cannot be read is observed as
Failed, that experiment alone), end jobs with a checkpoint (SIGTERM to the batch shell; a stop
or a pause ends every unfinished job of the experiment's name, since a job submitted just
before a crash has no reference yet) and cancel them. `submit_many` packs a sweep's first
attempts K to a job (`trialsPerJob`); a packed trial's end or cancel ends that trial alone.
A job is told its experiment's pause point (`rlops.dev/pause-at`, a sweep's rung).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from rlops.api.annotations import pause_at
from rlops.api.experiment import Backend, BackendRef, Phase, ResourcesSpec, RLExperiment
from rlops.api.runinfo import RunFileError, read_result
from rlops.backends.base import (
    EndKind,
    ExperimentBackend,
    Observation,
    Refused,
    Submission,
    submitted_or_refused,
    work_key,
)
from rlops.backends.slurm.array import array_key
from rlops.backends.slurm.backend import SlurmBackend
from rlops.backends.slurm.client import JobObservation, SubmitError
from rlops.backends.slurm.observe import observe_job, queue_wait_seconds
from rlops.backends.slurm.pack import pack_slots
from rlops.backends.slurm.render import ArrayTask
from rlops.backends.slurm.script import ScriptError, default_run_dir, slurm_placement

log = logging.getLogger("rlops.slurm_bridge")


class SlurmExperiments:
    """Experiments as SLURM jobs through one `SlurmBackend` (see the module)."""

    backend = Backend.SLURM

    def __init__(self, jobs: SlurmBackend, missing_polls: int = 1) -> None:
        self.jobs = jobs
        self.settings = jobs.settings
        self.missing_polls = missing_polls
        self._misses: dict[str, int] = {}  # job id -> looks in a row SLURM did not report it

    def run_dir(self, experiment: RLExperiment) -> Path:
        return default_run_dir(experiment, self.settings)

    def check(self, name: str, resources: ResourcesSpec) -> None:
        return None  # SLURM decides what fits.

    def close(self) -> None:
        return None  # Jobs belong to SLURM; the next poll picks them up again.

    def submit(self, submission: Submission) -> BackendRef:
        """Submit (or adopt the job of) the attempt. A resumed attempt adopts none of its
        ended jobs (earlier pauses), nor any in `previous`."""
        experiment, attempt = submission.experiment, submission.attempt
        earlier = list(submission.previous)
        if submission.resumed:
            earlier += self.jobs.ended_jobs(experiment)
        try:
            return self.jobs.submit(
                experiment, self.run_dir(experiment), attempt=attempt, previous_jobs=earlier,
                pause_at=pause_at(experiment.metadata.annotations),
            )  # fmt: skip
        except (ScriptError, SubmitError) as exc:
            raise Refused(str(exc)) from exc

    def submit_many(self, submissions: Sequence[Submission]) -> list[BackendRef | Refused]:
        """Several at once, in order: first attempts whose placement asks for
        `trialsPerJob: K > 1` and whose jobs would carry the same directives go K to one
        pack job (`SlurmBackend.submit_pack`, sharing its CPUs and GPUs); a lone
        remainder and every other submission are jobs of their own."""
        answers: dict[int, BackendRef | Refused] = {}
        groups: dict[object, list[int]] = defaultdict(list)
        for i, submission in enumerate(submissions):
            key = self._pack_key(submission)
            if key is None:
                answers[i] = submitted_or_refused(self, submission)
            else:
                groups[key].append(i)
        for members in groups.values():
            per_job = slurm_placement(submissions[members[0]].experiment).trials_per_job
            for start in range(0, len(members), per_job):
                chunk = members[start : start + per_job]
                if len(chunk) == 1:
                    answers[chunk[0]] = submitted_or_refused(self, submissions[chunk[0]])
                    continue
                tasks = [self._task(submissions[i]) for i in chunk]
                packed: BackendRef | Refused
                try:
                    packed = self.jobs.submit_pack(pack_slots(tasks))
                except (ScriptError, SubmitError) as exc:
                    packed = Refused(str(exc))
                answers.update(dict.fromkeys(chunk, packed))
        return [answers[i] for i in range(len(submissions))]

    def _task(self, submission: Submission) -> ArrayTask:
        experiment = submission.experiment
        at = pause_at(experiment.metadata.annotations)
        return ArrayTask(experiment, self.run_dir(experiment), submission.attempt, at)

    def _pack_key(self, submission: Submission) -> object | None:
        """What a submission's pack job must share with its packmates; None: it runs alone
        (one trial a job, a retry, a resume, or a spec whose script cannot be written,
        which its own submission then names)."""
        packs = slurm_placement(submission.experiment).trials_per_job > 1
        if not packs or submission.attempt != 1 or submission.previous or submission.resumed:
            return None
        try:
            return array_key(self._task(submission), self.settings)
        except ScriptError:
            return None

    def observe(
        self, work: Sequence[tuple[RLExperiment, BackendRef | None]]
    ) -> dict[str, Observation | None]:
        """Each referenced job as an Observation (its reason: SLURM's state; `waited`: its
        queue wait once it started), with one batched call; a job SLURM did not report is
        left out until it is confirmed gone."""
        job_ids = [ref.job_id for _, ref in work if ref is not None and ref.job_id]
        jobs = self.jobs.client.jobs(job_ids) if job_ids else {}
        for job_id in [j for j in self._misses if j in jobs]:
            del self._misses[job_id]
        seen: dict[str, Observation | None] = {}
        for experiment, ref in work:
            key = work_key(experiment)
            if ref is None or not ref.job_id:
                seen[key] = None
                continue
            attempts = experiment.status.attempts if experiment.status is not None else 1
            try:
                observed = self._observe(experiment, ref.job_id, jobs.get(ref.job_id), attempts)
            except (RunFileError, OSError) as exc:  # its own run directory: it alone fails
                message = f"{type(exc).__name__}: {exc}"[:1000]
                observed = Observation(Phase.FAILED, message, "RunFileError", terminal=True,
                                       attempt=attempts, name=f"job {ref.job_id}")  # fmt: skip
            if observed is not None:
                seen[key] = observed
        return seen

    def _observe(
        self, experiment: RLExperiment, job_id: str, job: JobObservation | None, attempts: int
    ) -> Observation | None:
        run_dir = self.run_dir(experiment)
        if job is None and not self._confirmed_gone(job_id, run_dir):
            return None
        observed = observe_job(experiment, job_id, job, run_dir, attempts)
        if job is not None:
            observed = replace(observed, reason=job.state, waited=queue_wait_seconds(job))
        return observed

    def _confirmed_gone(self, job_id: str, run_dir: Path) -> bool:
        """Whether a job SLURM did not report has ended (see the module)."""
        misses = self._misses.get(job_id, 0) + 1
        if read_result(run_dir) is not None or misses >= self.missing_polls:
            self._misses.pop(job_id, None)
            return True
        self._misses[job_id] = misses
        log.info("job %s not reported by SLURM (%d of %d polls)", job_id, misses,
                 self.missing_polls)  # fmt: skip
        return False

    def end(self, experiment: RLExperiment, ref: BackendRef | None, kind: EndKind) -> list[str]:
        job_id = ref.job_id if ref is not None else None
        if kind == "replace":
            ids = [job_id] if job_id else []
        else:
            ids = self.jobs.active_jobs(experiment, job_id)
        self.jobs.end(ids, self.run_dir(experiment))  # of a pack job, this trial alone
        return ids

    def cancel(self, experiment: RLExperiment | None, ref: BackendRef | None) -> list[str]:
        job_id = ref.job_id if ref is not None else None
        if experiment is None:
            ids = [job_id] if job_id else []
            self.jobs.cancel_jobs(ids)
        else:
            ids = self.jobs.active_jobs(experiment, job_id)
            self.jobs.cancel_jobs(ids, self.run_dir(experiment))  # of a pack job, this trial
        return ids


# mypy checks here that SlurmExperiments implements the protocol the drivers drive.
_IMPLEMENTS: Callable[[SlurmBackend, int], ExperimentBackend] = SlurmExperiments
