"""`SlurmBackend`: submit, observe (batched) and cancel experiments as SLURM jobs.

The local runner (`rlops run --backend slurm`) and the SLURM bridge drive it.
Submission is idempotent: the job name carries the experiment's uid and the job's
comment its attempt (`rlops-uid=<uid>,attempt=<n>` from attempt 2 on), and an existing
job of that name and attempt is adopted instead of submitting a second one; a job of
another attempt never is. An array job (`submit_array`) is adopted by its name, which
is derived from its tasks' run directories and attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from rlops.api.experiment import BackendRef, RLExperiment
from rlops.api.runinfo import SPEC_FILE, read_result
from rlops.backends.slurm.array import (
    array_name,
    link_run_dirs,
    render_array_script,
)
from rlops.backends.slurm.client import ATTEMPT_KEY, JobObservation, SlurmClient
from rlops.backends.slurm.pack import (
    PackSlot,
    abandoned,
    pack_dir,
    pack_members,
    pack_name,
    record_members,
    render_pack_script,
    request_stop,
)
from rlops.backends.slurm.render import ArrayTask, render_batch_script
from rlops.backends.slurm.script import (
    UID_COMMENT,
    job_name,
    slurm_placement,
)
from rlops.backends.slurm.settings import SlurmSettings
from rlops.backends.slurm.states import (
    FINISHED_STATES,
    QUEUED,
    JobPhase,
    base_state,
    job_phase,
    phase_for_missing_job,
)

SCRIPT_FILE = "batch.sh"
ARRAY_SCRIPT_FILE = "array.sh"  # in the array's links directory
PACK_SCRIPT_FILE = "pack.sh"  # in the pack's directory


def _write_spec(experiment: RLExperiment, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = experiment.model_dump(mode="json", by_alias=True, exclude_none=True)
    manifest.pop("status", None)
    (run_dir / SPEC_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))


def attempt_comment(experiment: RLExperiment, attempt: int) -> str | None:
    """The `--comment` of a job of `attempt`; None for attempt 1 (the script's own)."""
    if attempt <= 1:
        return None
    return f"{UID_COMMENT}{experiment.metadata.uid or 'local'},{ATTEMPT_KEY}={attempt}"


class SlurmBackend:
    """Experiments as SLURM jobs through one `SlurmClient`."""

    def __init__(self, client: SlurmClient, settings: SlurmSettings | None = None) -> None:
        self.client = client
        self.settings = settings or SlurmSettings()

    def find(
        self, experiment: RLExperiment, exclude: Iterable[str] = (), attempt: int = 1
    ) -> JobObservation | None:
        """The newest job of this experiment's `attempt` SLURM knows, other than `exclude`."""
        skip = set(exclude)
        jobs = [
            j
            for j in self.client.find_by_name(job_name(experiment))
            if j.job_id not in skip and j.attempt == attempt
        ]
        return jobs[-1] if jobs else None

    def submit(
        self,
        experiment: RLExperiment,
        run_dir: Path,
        *,
        previous_jobs: Iterable[str] = (),
        hold: bool = False,
        attempt: int = 1,
        pause_at: int | None = None,
    ) -> BackendRef:
        """Submit `attempt` of the experiment, or adopt its job when one exists already.

        `previous_jobs`: ids of earlier launches that a retry must not adopt. `pause_at`:
        the iteration after which the runtime checkpoints and ends as paused.
        """
        cluster = slurm_placement(experiment).cluster
        existing = self.find(experiment, exclude=previous_jobs, attempt=attempt)
        if existing is not None:
            return BackendRef(kind="SlurmJob", cluster=cluster, job_id=existing.job_id)
        script = render_batch_script(
            experiment, run_dir, self.settings, attempt=attempt, pause_at=pause_at
        )
        _write_spec(experiment, run_dir)
        (run_dir / SCRIPT_FILE).write_text(script)
        job_id = self.client.submit(script, hold=hold, comment=attempt_comment(experiment, attempt))
        return BackendRef(kind="SlurmJob", cluster=cluster, job_id=job_id)

    def submit_array(self, tasks: Sequence[ArrayTask]) -> list[BackendRef]:
        """Submit the tasks as one job array (task i: `<array job>_<i>`), or adopt the array
        of the same name (same run directories, attempts and pause points) when SLURM still
        knows it and it holds no task's earlier launch."""
        name = array_name(tasks)
        ended = {job_id.partition("_")[0] for task in tasks for job_id in task.previous}
        existing = [
            j for j in self.client.find_by_name(name) if j.job_id.partition("_")[0] not in ended
        ]
        if existing:
            array_id = existing[0].job_id.partition("_")[0]
        else:
            script = render_array_script(tasks, self.settings)
            for task in tasks:
                _write_spec(task.experiment, task.run_dir)
            links = link_run_dirs(tasks)
            (links / ARRAY_SCRIPT_FILE).write_text(script)
            array_id = self.client.submit(script)
        return [
            BackendRef(
                kind="SlurmJob",
                cluster=slurm_placement(task.experiment).cluster,
                job_id=f"{array_id}_{i}",
            )
            for i, task in enumerate(tasks)
        ]

    def submit_pack(self, slots: Sequence[PackSlot]) -> BackendRef:
        """Submit the slots' trials as one job side by side (see `pack`), or adopt the job
        of the same name when SLURM still knows it and it is no trial's earlier launch."""
        tasks = [slot.task for slot in slots]
        ended = {job_id for task in tasks for job_id in task.previous}
        existing = [j for j in self.client.find_by_name(pack_name(tasks)) if j.job_id not in ended]
        if existing:
            job_id = existing[0].job_id
        else:
            script = render_pack_script(slots, self.settings)
            for task in tasks:
                _write_spec(task.experiment, task.run_dir)
            where = pack_dir(tasks)
            where.mkdir(parents=True, exist_ok=True)
            (where / PACK_SCRIPT_FILE).write_text(script)
            job_id = self.client.submit(script)
        record_members(tasks, job_id)
        cluster = slurm_placement(tasks[0].experiment).cluster
        return BackendRef(kind="SlurmJob", cluster=cluster, job_id=job_id)

    def stop_packed(self, run_dir: Path, job_id: str) -> bool:
        """Stop the trial of `run_dir` alone in its pack job `job_id` (its runtime gets
        SIGTERM from the pack script, or never starts); once every trial of the job is told
        to stop and the job still waits in the queue, cancel it. True: it was cancelled."""
        request_stop(run_dir, job_id)
        if not abandoned(run_dir, job_id):
            return False
        job = self.client.jobs([job_id]).get(job_id)
        if job is None or base_state(job.state) not in QUEUED:
            return False  # running: the pack script stops each trial and ends
        self.client.cancel(job_id)
        return True

    def observe(self, refs: Iterable[BackendRef]) -> dict[str, JobObservation]:
        """Every referenced job SLURM still knows, in one batched call."""
        return self.client.jobs(r.job_id for r in refs if r.job_id)

    def cancel(self, ref: BackendRef) -> None:
        if ref.job_id:
            self.client.cancel(ref.job_id)

    def active_jobs(self, experiment: RLExperiment | None, job_id: str | None) -> list[str]:
        """The referenced job and any unfinished job of the experiment's name (a job
        submitted just before a crash has no reference yet)."""
        job_ids = {job_id} if job_id else set()
        if experiment is not None:
            found = self.client.find_by_name(job_name(experiment))
            job_ids |= {j.job_id for j in found if j.state not in FINISHED_STATES}
        return sorted(job_ids)

    def ended_jobs(self, experiment: RLExperiment) -> list[str]:
        """The jobs of the experiment's name that have ended (earlier pauses, attempts)."""
        found = self.client.find_by_name(job_name(experiment))
        return [j.job_id for j in found if j.state in FINISHED_STATES]

    def end(self, job_ids: Iterable[str], run_dir: Path | None = None) -> None:
        """End each job with a checkpoint (see `SlurmClient.terminate`); a pack job that
        holds the trial of `run_dir` ends that trial alone (`stop_packed`)."""
        for job_id in job_ids:
            if run_dir is not None and pack_members(run_dir, job_id) is not None:
                self.stop_packed(run_dir, job_id)
            else:
                self.client.terminate(job_id)

    def cancel_jobs(self, job_ids: Iterable[str], run_dir: Path | None = None) -> None:
        """Cancel each job outright (an experiment being deleted); of a pack job that holds
        the trial of `run_dir`, that trial alone (`stop_packed`)."""
        for job_id in job_ids:
            if run_dir is not None and pack_members(run_dir, job_id) is not None:
                self.stop_packed(run_dir, job_id)
            else:
                self.client.cancel(job_id)

    def terminate(self, ref: BackendRef) -> None:
        """End the job with a checkpoint (see `SlurmClient.terminate`)."""
        if ref.job_id:
            self.client.terminate(ref.job_id)


def experiment_phase(
    experiment: RLExperiment, job_id: str, job: JobObservation | None, run_dir: Path
) -> JobPhase:
    """The experiment's phase from its job (None: SLURM forgot it) and its run directory."""
    slurm = slurm_placement(experiment)
    result = read_result(run_dir)
    if job is None:
        return phase_for_missing_job(job_id, result)
    return job_phase(job, result, slurm.max_requeues, slurm.time_limit)
