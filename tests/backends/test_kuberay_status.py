"""RayJob status -> RLExperiment phase: the whole mapping table, the pre-running deadline
(a cluster stuck Initializing on image pulls or quota fails with a clear message), KubeRay
retries counted as attempts, and Kueue suspension read as waiting for admission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rlops.api import KubernetesPlacement, Phase
from rlops.backends.kuberay import observe_rayjob
from tests.builders import rayjob

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PLACEMENT = KubernetesPlacement(pre_running_deadline_seconds=600)


TABLE = [
    (None, None, Phase.SUBMITTED, "waiting for KubeRay"),
    ("New", None, Phase.SUBMITTED, "waiting for KubeRay"),
    ("Suspending", None, Phase.PENDING, "waiting for Kueue admission"),
    ("Suspended", None, Phase.PENDING, "waiting for Kueue admission"),
    ("Initializing", None, Phase.SUBMITTED, "starting the Ray cluster"),
    ("Waiting", None, Phase.SUBMITTED, "waiting to submit"),
    ("Running", "PENDING", Phase.SUBMITTED, "submitted"),
    ("Running", None, Phase.SUBMITTED, "submitted"),
    ("Running", "RUNNING", Phase.RUNNING, "training"),
    ("Running", "SUCCEEDED", Phase.RUNNING, "training"),
    ("Retrying", "FAILED", Phase.SUBMITTED, "retrying"),
    ("Complete", "SUCCEEDED", Phase.SUCCEEDED, "training finished"),
    ("Complete", "STOPPED", Phase.STOPPED, "stopped"),
    ("Complete", "FAILED", Phase.FAILED, "training failed"),
    ("Failed", "FAILED", Phase.FAILED, "training failed"),
    ("Failed", "RUNNING", Phase.FAILED, "the RayJob failed"),
    ("Failed", None, Phase.FAILED, "the RayJob failed"),
    ("ValidationFailed", None, Phase.FAILED, "the RayJob failed"),
    ("SomethingNew", None, Phase.SUBMITTED, "not known to rlops"),
]


@pytest.mark.parametrize(("deployment", "job", "phase", "words"), TABLE)
def test_mapping_table(deployment: str | None, job: str | None, phase: Phase, words: str) -> None:
    seen = observe_rayjob(rayjob(deployment, job), PLACEMENT, NOW)
    assert seen.phase is phase
    assert words in seen.message


@pytest.mark.parametrize(
    ("deployment", "terminal"), [("Complete", True), ("Failed", True), ("Running", False)]
)
def test_terminal_only_when_kuberay_is_done(deployment: str, terminal: bool) -> None:
    assert observe_rayjob(rayjob(deployment, "RUNNING"), PLACEMENT, NOW).terminal is terminal


def test_failure_message_carries_kuberays_reason_and_detail() -> None:
    seen = observe_rayjob(
        rayjob("Failed", reason="DeadlineExceeded", message="activeDeadlineSeconds passed"),
        PLACEMENT,
        NOW,
    )
    assert seen.phase is Phase.FAILED
    assert "DeadlineExceeded" in seen.message and "activeDeadlineSeconds passed" in seen.message


def test_initializing_past_the_pre_running_deadline_fails_clearly() -> None:
    started = (NOW - timedelta(seconds=601)).isoformat()
    seen = observe_rayjob(
        rayjob("Initializing", startTime=started, rayClusterName="x-raycluster-abc"),
        PLACEMENT,
        NOW,
    )
    assert seen.phase is Phase.FAILED
    assert seen.reason == "PreRunningDeadlineExceeded"
    assert "preRunningDeadlineSeconds=600" in seen.message
    assert "x-raycluster-abc" in seen.message and "image pull" in seen.message
    assert not seen.terminal  # KubeRay still holds the cluster: the caller must delete it


def test_initializing_within_the_deadline_is_still_starting() -> None:
    started = (NOW - timedelta(seconds=599)).isoformat()
    seen = observe_rayjob(rayjob("Initializing", startTime=started), PLACEMENT, NOW)
    assert seen.phase is Phase.SUBMITTED


def test_deadline_counts_from_creation_when_kuberay_set_no_start_time() -> None:
    body = rayjob("Initializing")
    body["metadata"]["creationTimestamp"] = (NOW - timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert observe_rayjob(body, PLACEMENT, NOW).phase is Phase.FAILED
    short = KubernetesPlacement(pre_running_deadline_seconds=7200)
    assert observe_rayjob(body, short, NOW).phase is Phase.SUBMITTED


def test_retries_are_counted_from_kuberays_failed_counter() -> None:
    seen = observe_rayjob(rayjob("Retrying", "FAILED", failed=2), PLACEMENT, NOW)
    assert seen.retries == 2
    assert "failed 2 times" in seen.message


def test_the_failure_that_ended_a_rayjob_is_not_a_retry() -> None:
    """backoffLimit 0: a job that failed once is failed=1 and was never retried, so its
    experiment has had one attempt (a sweep's maxAttempts may still retry it)."""
    assert observe_rayjob(rayjob("Failed", "FAILED", failed=1), PLACEMENT, NOW).retries == 0
    assert observe_rayjob(rayjob("Failed", "FAILED", failed=3), PLACEMENT, NOW).retries == 2


def test_times_are_taken_from_the_rayjob() -> None:
    seen = observe_rayjob(
        rayjob(
            "Complete",
            "SUCCEEDED",
            startTime="2025-01-01T10:00:00Z",
            endTime="2025-01-01T11:00:00Z",
        ),
        PLACEMENT,
        NOW,
    )
    assert (seen.started_at, seen.completed_at) == ("2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z")
    suspended = observe_rayjob(
        rayjob("Suspended", startTime="2025-01-01T10:00:00Z"), PLACEMENT, NOW
    )
    assert suspended.started_at is None
