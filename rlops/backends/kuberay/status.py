"""What a RayJob's status means for its RLExperiment: one pure mapping.

A RayJob has no conditions: KubeRay reports `jobDeploymentStatus` (where the
RayJob's own machinery is: cluster, submitter, retries, Kueue suspension) and
`jobStatus` (the Ray job inside, once submitted). Both together decide the phase.
KubeRay never gives up on a cluster that cannot start (an image that cannot be
pulled, a quota that is never granted) unless told, so a RayJob `Initializing`
longer than the placement's pre-running deadline fails here with a message that
says where to look. A failed job's message is the runtime's own last word when Ray's
message quotes it (an object store that cannot be reached, an invalid manifest).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from rlops.api.experiment import KubernetesPlacement, Phase
from rlops.backends.base import Observation
from rlops.backends.kuberay.builder import LABEL_ATTEMPT

# jobDeploymentStatus values after which KubeRay does nothing more with the RayJob.
TERMINAL_DEPLOYMENT = frozenset({"Complete", "Failed", "ValidationFailed"})
WAITING_JOB_STATUSES = frozenset({"", "PENDING"})


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _initializing_since(rayjob: Mapping[str, Any]) -> datetime | None:
    """When the RayJob began to start its cluster (its start, else its creation)."""
    status = rayjob.get("status") or {}
    return parse_time(status.get("startTime")) or parse_time(
        (rayjob.get("metadata") or {}).get("creationTimestamp")
    )


def _initializing(
    rayjob: Mapping[str, Any], placement: KubernetesPlacement, now: datetime
) -> Observation:
    status = rayjob.get("status") or {}
    since = _initializing_since(rayjob)
    deadline = placement.pre_running_deadline_seconds
    if since is not None and (now - since).total_seconds() > deadline:
        cluster = status.get("rayClusterName") or "its Ray cluster"
        return Observation(
            Phase.FAILED,
            f"the Ray cluster did not start within preRunningDeadlineSeconds={deadline}: "
            f"check the pods of {cluster} for image pull errors or unschedulable "
            "resources (quota, node selector, GPUs)",
            reason="PreRunningDeadlineExceeded",
        )
    return Observation(Phase.SUBMITTED, "starting the Ray cluster", reason="Initializing")


# The runtime's last line (rlops.runtime.main), which Ray's message of a failed job ends
# with among the last logs: its own account of the failure.
RUNTIME_VERDICT = re.compile(r"^rlops: (?:failed|invalid) \((.+)\); exit \d+$", re.MULTILINE)


def failure_detail(detail: str) -> str:
    """What a failed Ray job's message says: the runtime's own account when the logs Ray
    quotes end with one (not the whole tail of the logs), else the message as it is."""
    verdicts = RUNTIME_VERDICT.findall(detail)
    return str(verdicts[-1]) if verdicts else detail


# The runtime's last line when it ended at its pause point (rlops.runtime.loop, .command).
RUNTIME_PAUSED = re.compile(
    r"^rlops: requeue \(paused at iteration (\d+);[^()\n]*\); exit 75$", re.MULTILINE
)


def paused_at(rayjob: Mapping[str, Any]) -> int | None:
    """The iteration at which the RayJob's run ended at its pause point, as the runtime's
    last line (quoted by Ray's message of the ended job) says; None when it does not."""
    found = RUNTIME_PAUSED.findall(str((rayjob.get("status") or {}).get("message") or ""))
    return int(found[-1]) if found else None


def _finished(status: Mapping[str, Any], deployment: str) -> Observation:
    job_status = status.get("jobStatus") or ""
    detail = status.get("message") or ""
    reason = status.get("reason") or deployment
    end = status.get("endTime")
    if deployment == "Complete" and job_status == "SUCCEEDED":
        return Observation(
            Phase.SUCCEEDED, "training finished", "Succeeded", completed_at=end, terminal=True
        )
    if job_status == "STOPPED":
        message = f"the Ray job was stopped{': ' + detail if detail else ''}"
        return Observation(Phase.STOPPED, message, "Stopped", completed_at=end, terminal=True)
    if job_status == "FAILED":
        detail = failure_detail(detail)
        message = f"training failed{': ' + detail if detail else ''}"
        return Observation(Phase.FAILED, message, "TrainingFailed", completed_at=end, terminal=True)
    message = f"the RayJob failed ({reason}){': ' + detail if detail else ''}"
    return Observation(Phase.FAILED, message, reason, completed_at=end, terminal=True)


def observe_rayjob(
    rayjob: Mapping[str, Any], placement: KubernetesPlacement, now: datetime
) -> Observation:
    """The RLExperiment's side of a RayJob: phase, message, retries and times."""
    status = rayjob.get("status") or {}
    deployment = status.get("jobDeploymentStatus") or ""
    job_status = status.get("jobStatus") or ""
    failed = int(status.get("failed") or 0)
    # KubeRay counts every failed run; the last one of a RayJob that ended Failed was not
    # retried (with backoffLimit 0, a job killed once is failed=1 and no retry).
    retries = max(failed - 1, 0) if deployment == "Failed" else failed
    started = status.get("startTime")

    observation: Observation
    if deployment in ("", "New"):
        observation = Observation(Phase.SUBMITTED, "RayJob created; waiting for KubeRay", "New")
    elif deployment in ("Suspended", "Suspending"):
        observation = Observation(
            Phase.PENDING, "waiting for Kueue admission (the RayJob is suspended)", "Suspended"
        )
    elif deployment == "Initializing":
        observation = _initializing(rayjob, placement, now)
    elif deployment == "Waiting":
        observation = Observation(
            Phase.SUBMITTED, "Ray cluster ready; waiting to submit the job", "Waiting"
        )
    elif deployment == "Retrying":
        observation = Observation(
            Phase.SUBMITTED, f"KubeRay is retrying the job (failed {failed} times)", "Retrying"
        )
    elif deployment == "Running":
        if job_status in WAITING_JOB_STATUSES:
            observation = Observation(Phase.SUBMITTED, "Ray job submitted", "JobPending")
        else:
            observation = Observation(Phase.RUNNING, "training", "Running")
    elif deployment in TERMINAL_DEPLOYMENT:
        observation = _finished(status, deployment)
    else:
        observation = Observation(
            Phase.SUBMITTED, f"RayJob is {deployment} (not known to rlops)", deployment
        )
    return Observation(
        phase=observation.phase,
        message=observation.message,
        reason=observation.reason,
        retries=retries,
        started_at=started if observation.phase is not Phase.PENDING else None,
        completed_at=observation.completed_at,
        terminal=observation.terminal,
    )


def rayjob_attempt(rayjob: Mapping[str, Any]) -> int:
    value = ((rayjob.get("metadata") or {}).get("labels") or {}).get(LABEL_ATTEMPT, "1")
    return int(value) if str(value).isdigit() else 1


def rayjob_work(
    rayjob: Mapping[str, Any] | None, placement: KubernetesPlacement, now: datetime
) -> Observation | None:
    """The RayJob as the lifecycle sees it (None: there is none): the attempt of its label;
    it lingers until deleted; while its cluster starts, when the deadline is due."""
    if rayjob is None:
        return None
    observed = observe_rayjob(rayjob, placement, now)
    meta = rayjob.get("metadata") or {}
    recheck = None
    if observed.reason == "Initializing":
        recheck = _seconds_to_deadline(rayjob, placement, now)
    return replace(observed, attempt=rayjob_attempt(rayjob), name=f"RayJob {meta.get('name')}",
                   lingers=True, ending=bool(meta.get("deletionTimestamp")),
                   recheck_after=recheck, paused_at=paused_at(rayjob))  # fmt: skip


def _seconds_to_deadline(
    rayjob: Mapping[str, Any], placement: KubernetesPlacement, now: datetime
) -> float:
    since = _initializing_since(rayjob)
    if since is None:
        return float(placement.pre_running_deadline_seconds)
    left = placement.pre_running_deadline_seconds - (now - since).total_seconds()
    return max(1.0, left + 1.0)
