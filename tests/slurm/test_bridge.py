"""The SLURM bridge end to end: RLExperiments in the Kubernetes test bed (API emulator), jobs on
the real SLURM cluster, real CartPole training on the host Python (container runtime `none`).

Covers: an experiment reaching Succeeded with progress, result, attempts and conditions in its
status while slurmctld restarts mid-run; a bridge killed between sbatch and its status write
submitting nothing twice; `scancel` from outside giving Stopped with a clear message; deleting
an RLExperiment cancelling its job through the bridge's finalizer; a job hitting its one-minute
time limit checkpointing, being requeued and resuming with continued timesteps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlops.api import RLExperiment
from rlops.backends.slurm import (
    CliSlurmClient,
    SlurmBackend,
    SlurmSettings,
    default_run_dir,
    job_name,
)
from rlops.slurm_bridge.bridge import CLAIMED_BY, FINALIZER, SlurmBridge
from rlops.slurm_bridge.settings import BridgeSettings
from rlops.slurm_bridge.store import KubeExperimentStore
from tests.builders import ExperimentBuilder, experiment
from tests.kube.fixtures import KubeTestBed
from tests.slurm.slurm_cluster import SlurmCluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

GROUP, VERSION, PLURAL = "rlops.dev", "v1alpha1", "rlexperiments"
TINY_PPO = {"train_batch_size_per_learner": 200, "minibatch_size": 100, "num_epochs": 1}


def get_experiment(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """The RLExperiment as stored, None when it is gone."""
    import kubernetes.client

    try:
        body: dict[str, Any] = api.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return body


class Crash(BaseException):
    """Stands for the bridge process being killed at that point (a BaseException: nothing
    the bridge isolates per experiment, as a kill is not)."""


class World:
    """One namespace of the test bed, the bridge over it, and the SLURM commands it ran."""

    def __init__(
        self, kube: KubeTestBed, namespace: str, cli: CliSlurmClient, settings: SlurmSettings
    ) -> None:
        import kubernetes.client

        self.namespace = namespace
        self._api_client = kube.api_client()
        self.api = kubernetes.client.CustomObjectsApi(self._api_client)
        self.commands: list[str] = []
        cli.observer = lambda command, seconds, ok: self.commands.append(command)
        self.backend = SlurmBackend(cli, settings)
        self.settings = BridgeSettings(cluster="hpc", namespaces=[namespace], bridge_id="test")

    def bridge(self, **kwargs: Any) -> SlurmBridge:
        return SlurmBridge(KubeExperimentStore(self.api), self.backend, self.settings, **kwargs)

    def create(self, builder: ExperimentBuilder) -> dict[str, Any]:
        body = builder.set("metadata.namespace", self.namespace).obj()
        created: dict[str, Any] = self.api.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any] | None:
        return get_experiment(self.api, self.namespace, name)

    def status(self, name: str) -> dict[str, Any]:
        body = self.get(name)
        return (body or {}).get("status") or {}

    def poll_until(
        self,
        bridge: SlurmBridge,
        done: Callable[[], bool],
        timeout: float,
        every: Callable[[], None] = lambda: None,
    ) -> None:
        def step() -> bool:
            bridge.poll()
            every()
            return done()

        try:
            wait_until(step, timeout, "the condition", interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last status: {self.status_text()}") from None

    def status_text(self) -> str:
        items = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return json.dumps({i["metadata"]["name"]: i.get("status") for i in items["items"]})

    def close(self) -> None:
        self._api_client.close()


@pytest.fixture
def world(
    kube: KubeTestBed,
    kube_namespace: str,
    cli_client: CliSlurmClient,
    slurm_settings: SlurmSettings,
) -> Iterator[World]:
    w = World(kube, kube_namespace, cli_client, slurm_settings)
    yield w
    w.close()


def cartpole(name: str, **slurm: Any) -> ExperimentBuilder:
    return (
        experiment(name)
        .config("training", **TINY_PPO)
        .set("spec.resources", {"envRunners": 0})
        .slurm(**slurm)
    )


def waiting(name: str) -> ExperimentBuilder:
    """A job SLURM keeps pending for an hour: cheap to submit, track and cancel."""
    return cartpole(name, extraDirectives=["--begin=now+1hour"])


def sbatch_calls(world: World) -> int:
    return world.commands.count("sbatch")


@pytest.mark.training
def test_experiment_succeeds_with_progress_while_slurmctld_restarts(
    world: World, slurm_cluster: SlurmCluster
) -> None:
    world.create(cartpole("train").stop(timesteps=600))
    bridge = world.bridge()
    restarted = []

    def restart_once_running() -> None:
        if not restarted and world.status("train").get("phase") == "Running":
            slurm_cluster.restart_slurmctld()
            restarted.append(True)

    world.poll_until(
        bridge,
        lambda: world.status("train").get("phase") in ("Succeeded", "Failed", "Stopped"),
        timeout=240,
        every=restart_once_running,
    )
    body = world.get("train")
    assert body is not None
    status = body["status"]
    assert restarted, "slurmctld was never restarted mid-run"
    assert status["phase"] == "Succeeded", status
    assert status["backend"] == "slurm"
    ref = status["backendRef"]
    assert ref["kind"] == "SlurmJob" and ref["cluster"] == "hpc" and ref["jobId"]
    assert status["progress"]["timesteps"] >= 600
    assert status["progress"]["percent"] == 100.0
    assert status["result"]["stopReason"] == "timesteps"
    assert status["result"]["bestCheckpoint"].startswith("/")
    assert status["attempts"] == 1
    assert status["startedAt"] <= status["completedAt"]
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    assert body["metadata"]["annotations"][CLAIMED_BY] == "hpc/test"
    assert FINALIZER in body["metadata"]["finalizers"]
    assert sbatch_calls(world) == 1
    run_dir = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)
    assert (run_dir / f"slurm-{ref['jobId']}.out").exists()


def test_bridge_killed_between_sbatch_and_status_submits_once(world: World) -> None:
    world.create(waiting("crash"))

    def crash(experiment: RLExperiment, ref: Any) -> None:
        raise Crash("killed after sbatch")

    with pytest.raises(Crash):
        world.bridge(on_submitted=crash).poll()
    assert world.status("crash") == {}  # the status update never happened
    restarted = world.bridge()
    restarted.poll()
    restarted.poll()
    status = world.status("crash")
    body = world.get("crash")
    assert body is not None
    jobs = world.backend.client.find_by_name(job_name(RLExperiment.model_validate(body)))
    assert sbatch_calls(world) == 1
    assert [j.job_id for j in jobs] == [status["backendRef"]["jobId"]]
    assert status["phase"] == "Submitted" and "BeginTime" in status["message"]

    # Deleting the RLExperiment cancels its job, then the finalizer lets it go.
    world.api.delete_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL, "crash")
    world.poll_until(restarted, lambda: world.get("crash") is None, timeout=30)
    job = world.backend.client.jobs([jobs[0].job_id])[jobs[0].job_id]
    assert job.state == "CANCELLED"


def test_scancel_from_outside_stops_the_experiment(
    world: World, slurm_cluster: SlurmCluster
) -> None:
    world.create(waiting("outside"))
    bridge = world.bridge()
    bridge.poll()
    job_id = world.status("outside")["backendRef"]["jobId"]
    assert slurm_cluster.run("scancel", job_id).returncode == 0
    world.poll_until(bridge, lambda: world.status("outside").get("phase") == "Stopped", 30)
    status = world.status("outside")
    assert status["message"] == f"job {job_id} cancelled outside rlops (scancel)"
    assert status["completedAt"]


@pytest.mark.training
def test_time_limit_checkpoints_requeues_and_resumes(
    world: World, slurm_cluster: SlurmCluster
) -> None:
    # One minute per job with USR1 5 s before the limit. slurmctld checks time limits on a
    # 30 s timer, so its USR1 comes anywhere from ~25 s to ~55 s into a job: too loose to
    # be sure the first job cannot finish 20 s of training. So once the first job has
    # trained an iteration, the test sends it that same signal (`scancel --signal=USR1
    # --batch`, what SLURM does at the limit); later jobs get SLURM's own.
    # 10 s of training in all: more than the first job gets, reachable in a later one even
    # on a loaded machine where starting Ray eats most of each minute (hence 6 requeues).
    exp = cartpole("chunked", timeLimit="1", signalSeconds=5, maxRequeues=6).stop(
        wallTimeSeconds=10
    )
    body = world.create(exp)
    bridge = world.bridge()
    run_dir = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)
    signalled: list[str] = []

    def signal_first_job_after_one_iteration() -> None:
        progress = run_dir / "progress.jsonl"
        job_id = (world.status("chunked").get("backendRef") or {}).get("jobId")
        if signalled or not job_id or not progress.exists() or not progress.read_text():
            return
        assert json.loads(progress.read_text().splitlines()[0])["attempt"] == 1
        sent = slurm_cluster.run("scancel", "--signal=USR1", "--batch", job_id)
        assert sent.returncode == 0, sent.stderr
        signalled.append(job_id)

    world.poll_until(
        bridge,
        lambda: world.status("chunked").get("phase") in ("Succeeded", "Failed", "Stopped"),
        timeout=540,
        every=signal_first_job_after_one_iteration,
    )
    body = world.get("chunked")
    assert body is not None
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert status["attempts"] >= 2
    records = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    attempts = [r["attempt"] for r in records]
    assert len(set(attempts)) >= 2 and attempts == sorted(attempts)
    timesteps = [r["timesteps"] for r in records]
    assert timesteps == sorted(timesteps) and len(set(timesteps)) == len(timesteps)
    first_of_second = attempts.index(sorted(set(attempts))[1])
    assert timesteps[first_of_second] > timesteps[first_of_second - 1]  # resumed, not restarted
    assert sbatch_calls(world) == 1  # requeued by SLURM, never resubmitted
    output = (run_dir / f"slurm-{status['backendRef']['jobId']}.out").read_text()
    assert "requeueing for attempt 2" in output
