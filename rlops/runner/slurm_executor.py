"""`rlops run --backend slurm`: trials as SLURM jobs, through the SLURM backend.

A thin adapter from the runner's Executor protocol to `SlurmBackend`: start submits
the trial's RLExperiment (its batch script runs the runtime in the trial's run
directory, which must be on a filesystem the compute nodes share), poll is one batched
`squeue` for every running trial, stop is `scancel` (SIGTERM: the runtime checkpoints).
SLURM schedules the jobs, so nothing is packed here; `parallelism` still caps them.

Job names carry a uid derived from the run directory, so a second `rlops run` adopts a
job that is still queued or running instead of submitting it twice.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from rlops.api import Backend, Phase, ResourcesSpec, RLExperiment
from rlops.api.experiment import BackendRef
from rlops.api.runinfo import ExitCode, read_result
from rlops.backends.slurm import SlurmBackend, SlurmUnavailable, experiment_phase
from rlops.runner.executor import Handle, LaunchRequest


def run_uid(run_dir: Path) -> str:
    """A stable uid for the trial in `run_dir`: the same on every `rlops run`."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()
    return str(uuid.UUID(digest[:32]))


def exit_code(phase: Phase, result_code: int | None, stopped: bool) -> int:
    """The exit code the runner records for a finished job."""
    if phase == Phase.SUCCEEDED:
        return int(ExitCode.SUCCEEDED)
    if phase == Phase.STOPPED:  # Cancelled: by us (it checkpointed), or by someone else.
        return int(ExitCode.REQUEUE) if stopped else int(ExitCode.FAILED)
    if result_code in (ExitCode.INVALID, ExitCode.FAILED):
        return int(result_code)
    return int(ExitCode.FAILED)


@dataclass
class _Job:
    experiment: RLExperiment
    ref: BackendRef
    run_dir: Path
    stopped: bool = False


class SlurmExecutor:
    backend = Backend.SLURM

    def __init__(self, slurm: SlurmBackend) -> None:
        self.slurm = slurm
        self._jobs: dict[str, _Job] = {}

    def check(self, name: str, resources: ResourcesSpec) -> None:
        return None  # SLURM decides what fits.

    def start(self, request: LaunchRequest) -> Handle | None:
        body = yaml.safe_load(request.spec.read_text())
        body.setdefault("metadata", {})["uid"] = run_uid(request.run_dir)
        experiment = RLExperiment.model_validate(body)
        # A job of an ended launch is never adopted again: a retry submits anew.
        ref = self.slurm.submit(
            experiment, request.run_dir, previous_jobs=request.previous, attempt=request.attempt
        )
        self._jobs[request.name] = _Job(experiment, ref, request.run_dir)
        return Handle(request.name, request.attempt, ref.job_id or "")

    def poll(self, handles: Sequence[Handle]) -> dict[str, int]:
        jobs = [(h, self._jobs[h.name]) for h in handles if h.name in self._jobs]
        if not jobs:
            return {}
        try:
            seen = self.slurm.observe(job.ref for _, job in jobs)
        except SlurmUnavailable:
            return {}  # slurmctld is busy or restarting: look again next poll.
        ended = {}
        for handle, job in jobs:
            job_id = job.ref.job_id or ""
            phase = experiment_phase(job.experiment, job_id, seen.get(job_id), job.run_dir)
            if not phase.terminal:
                continue
            result = read_result(job.run_dir)
            code = result.exit_code if result is not None else None
            ended[handle.name] = exit_code(phase.phase, code, job.stopped)
            del self._jobs[handle.name]
        return ended

    def stop(self, handle: Handle) -> None:
        job = self._jobs.get(handle.name)
        if job is not None:
            job.stopped = True
            self.slurm.cancel(job.ref)

    def kill(self, handle: Handle) -> None:
        self.stop(handle)

    def close(self) -> None:
        return None  # Jobs belong to SLURM; a later run picks them up again.
