"""The SLURM bridge's own metrics: a job's queue wait (pure cases, then observed once per
job by a bridge polling the real SLURM cluster), every SLURM command it ran counted with
its duration through the client's observer, and each poll timed as `SlurmPoll`.

The experiment lives in the Kubernetes test bed (API emulator); its job runs for real
and fails fast (an environment id that does not exist), so no training is needed.
"""

from __future__ import annotations

from typing import Any

import pytest

from rlops.backends.slurm import CliSlurmClient, JobObservation, SlurmBackend, SlurmSettings
from rlops.metrics import RlopsMetrics
from rlops.slurm_bridge.bridge import SlurmBridge, queue_wait_seconds
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import KubeExperimentStore
from tests.builders import experiment, slurm_job
from tests.kube.fixtures import KubeTestBed
from tests.slurm.conftest import cli_client, slurm_cluster, slurm_settings  # noqa: F401
from tests.waiting import wait_until

GROUP, VERSION, PLURAL = "rlops.dev", "v1alpha1", "rlexperiments"


def job(state: str, submit: str | None, start: str | None, nodes: str = "node1") -> JobObservation:
    return slurm_job(state, submit_time=submit, start_time=start, nodes=nodes)


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (job("RUNNING", "2025-01-01T10:00:00", "2025-01-01T10:02:30"), 150.0),
        (job("COMPLETED", "2025-01-01T10:00:00Z", "2025-01-01T11:00:00Z"), 3600.0),
        # A pending job's start time is SLURM's estimate, not a start.
        (job("PENDING", "2025-01-01T10:00:00", "2025-01-01T10:05:00", nodes=""), None),
        # Cancelled while pending: its start time is the cancel time and it had no nodes.
        (job("CANCELLED", "2025-01-01T10:00:00", "2025-01-01T10:05:00", nodes=""), None),
        (job("RUNNING", "2025-01-01T10:00:00", None), None),
        (job("RUNNING", None, "2025-01-01T10:00:00"), None),
    ],
)
def test_queue_wait_counts_only_jobs_that_started(
    observed: JobObservation, expected: float | None
) -> None:
    assert queue_wait_seconds(observed) == expected


def sample(metrics: RlopsMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.slurm
def test_bridge_observes_commands_queue_wait_once_and_poll_time(
    kube: KubeTestBed,
    kube_namespace: str,
    cli_client: CliSlurmClient,  # noqa: F811
    slurm_settings: SlurmSettings,  # noqa: F811
) -> None:
    import kubernetes.client

    metrics = RlopsMetrics()
    cli_client.observer = metrics.observe_slurm_command  # as `rlops slurm-bridge` wires it
    api_client = kube.api_client()
    api = kubernetes.client.CustomObjectsApi(api_client)
    body = (
        experiment("no-env", kube_namespace)
        .env("NoSuchEnvironment-v0")
        .stop(timesteps=200)
        .slurm()
        .obj()
    )
    api.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, body)
    settings = BridgeSettings(cluster="hpc", namespaces=[kube_namespace], bridge_id="test")
    bridge = SlurmBridge(
        KubeExperimentStore(api), SlurmBackend(cli_client, slurm_settings), settings,
        metrics=metrics,
    )  # fmt: skip
    assert not bridge.ready()

    def status() -> dict[str, Any]:
        got = api.get_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "no-env")
        return dict(got.get("status") or {})

    polls = 0

    def finished() -> bool:
        nonlocal polls
        if status().get("phase") in ("Failed", "Succeeded", "Stopped"):
            return True
        bridge.timed_poll()
        polls += 1
        return False

    wait_until(finished, 120, "the job to finish", interval=0.5)
    squeues = sample(metrics, "rlops_slurm_command_duration_seconds_count", command="squeue")
    for _ in range(2):  # a finished experiment is no longer observed: no SLURM call
        bridge.timed_poll()
    api_client.close()

    assert bridge.ready()
    assert status()["phase"] == "Failed", status()
    assert sample(metrics, "rlops_slurm_command_duration_seconds_count", command="sbatch") == 1
    # squeue: one batched observation per poll while tracked, plus the look-up by
    # name before the submission; none after the end.
    assert squeues >= polls
    assert (
        sample(metrics, "rlops_slurm_command_duration_seconds_count", command="squeue") == squeues
    )
    assert sample(metrics, "rlops_slurm_command_duration_seconds_sum", command="sbatch") > 0
    assert sample(metrics, "rlops_slurm_command_errors_total", command="squeue") == 0
    assert sample(metrics, "rlops_slurm_queue_wait_seconds_count", cluster="hpc") == 1
    assert sample(metrics, "rlops_slurm_queue_wait_seconds_sum", cluster="hpc") >= 0
    assert sample(metrics, "rlops_reconcile_duration_seconds_count", kind="SlurmPoll") == polls + 2
    assert sample(metrics, "rlops_bridge_last_poll_timestamp_seconds", cluster="hpc") > 0
