"""Every SLURM job state → an rlops phase with a clear message (pure).

The runtime's exit code and result.json refine what SLURM knows: a job SLURM calls
COMPLETED whose result.json says failed is Failed; a job that exited 75 after the
time-limit signal with no requeue left is Failed with a hint to raise maxRequeues.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlops.api.experiment import Phase
from rlops.api.runinfo import ExitCode, RunResult
from rlops.backends.slurm.client import JobObservation

QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"}
ACTIVE = {"RUNNING", "COMPLETING", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING",
          "STAGE_OUT", "UPDATE_DB", "POWER_UP_NODE"}  # fmt: skip
FAILED_STATES = {
    "TIMEOUT": "hit its time limit ({limit}); set placement.slurm.maxRequeues to resume "
    "from the checkpoint in a new job, or raise timeLimit",
    "NODE_FAIL": "a node of the job failed",
    "PREEMPTED": "preempted by a higher-priority job and not requeued",
    "OUT_OF_MEMORY": "ran out of memory; raise resources.memory",
    "BOOT_FAIL": "its nodes failed to boot",
    "DEADLINE": "missed its --deadline",
    "SPECIAL_EXIT": "ended with a special exit and is held",
}
FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                   "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED"}  # fmt: skip
STOPPED_STATES = {
    "CANCELLED": "cancelled outside rlops (scancel)",
    "REVOKED": "revoked: a sibling cluster of the federation runs it",
}


@dataclass(frozen=True)
class JobPhase:
    """What one observation means for the experiment."""

    phase: Phase
    message: str
    attempts: int
    terminal: bool


def base_state(state: str) -> str:
    """`CANCELLED by 0` and `RUNNING+` as SLURM's plain state name."""
    return state.split()[0].upper().rstrip("+") if state.strip() else "UNKNOWN"


def job_phase(
    job: JobObservation,
    result: RunResult | None = None,
    max_requeues: int = 0,
    time_limit: str | None = None,
) -> JobPhase:
    """The phase of an experiment whose SLURM job is `job` (result: its result.json)."""
    state = base_state(job.state)
    attempts = job.attempt + job.restarts  # requested attempts plus SLURM's requeues
    total = max_requeues + 1
    where = f"job {job.job_id}"
    if state in QUEUED:
        if job.restarts:
            why = f"attempt {job.restarts + 1} of {total} waits ({job.reason or state})"
            if state in ("REQUEUE_HOLD", "SPECIAL_EXIT"):
                why += "; held: `scontrol release " + job.job_id + "`"
            return JobPhase(Phase.RUNNING, f"{where} requeued: {why}", attempts, False)
        reason = job.reason if job.reason and job.reason != "None" else "waiting"
        held = "held" if "Held" in reason or state.endswith("HOLD") else "queued"
        return JobPhase(Phase.SUBMITTED, f"{where} {held} ({reason})", 0, False)
    if state in ACTIVE:
        detail = {"SUSPENDED": "suspended", "STOPPED": "stopped by SIGSTOP",
                  "COMPLETING": "finishing"}.get(state, "running")  # fmt: skip
        on = f" on {job.nodes}" if job.nodes and job.nodes != "(null)" else ""
        message = f"{where} {detail}{on} (attempt {attempts})"
        return JobPhase(Phase.RUNNING, message, attempts, False)
    if state == "COMPLETED":
        if result is not None and result.status != "succeeded":
            return JobPhase(Phase.FAILED, _result_message(where, result), attempts, True)
        message = result.message if result and result.message else "exit 0"
        return JobPhase(Phase.SUCCEEDED, f"{where} completed: {message}", attempts, True)
    if state in STOPPED_STATES:
        return JobPhase(Phase.STOPPED, f"{where} {STOPPED_STATES[state]}", attempts, True)
    if state == "FAILED":
        return JobPhase(Phase.FAILED, _failed_message(where, job, result, max_requeues), attempts,
                        True)  # fmt: skip
    if state in FAILED_STATES:
        text = FAILED_STATES[state].format(limit=time_limit or "unset")
        return JobPhase(Phase.FAILED, f"{where} {text}", attempts, True)
    return JobPhase(Phase.RUNNING, f"{where} is in an unfamiliar state {state}", attempts, False)


def _result_message(where: str, result: RunResult) -> str:
    return f"{where} finished but training {result.status}: {result.message or 'no message'}"


def _failed_message(
    where: str, job: JobObservation, result: RunResult | None, max_requeues: int
) -> str:
    code = job.exit_code
    if code == ExitCode.INVALID:
        detail = result.message if result else "see the job output"
        return f"{where}: the runtime rejected the spec: {detail}"
    if code == ExitCode.REQUEUE:
        return (
            f"{where} checkpointed at its time limit after {job.restarts + 1} attempt(s) "
            f"with no requeue left (maxRequeues={max_requeues}); raise maxRequeues to continue"
        )
    if result is not None and result.status == "failed" and result.message:
        return f"{where} failed (exit {code}): {result.message}"
    if job.signal:
        return f"{where} was killed by signal {job.signal}"
    return f"{where} failed with exit code {code}; see slurm-{job.job_id}.out in the run directory"


def phase_for_missing_job(job_id: str, result: RunResult | None) -> JobPhase:
    """A job SLURM no longer knows (purged after MinJobAge): result.json decides."""
    if result is None:
        return JobPhase(
            Phase.FAILED, f"job {job_id} is no longer known to SLURM and left no result.json",
            0, True,
        )  # fmt: skip
    phase = Phase.SUCCEEDED if result.status == "succeeded" else Phase.FAILED
    return JobPhase(phase, f"job {job_id} ended: {result.status}: {result.message}",
                    result.attempt, True)  # fmt: skip
