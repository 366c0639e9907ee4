"""Hybrid bursting end to end: one Sweep across Kubernetes and SLURM.

Real: `rlops operator` and `rlops slurm-bridge` (two processes), kubectl, slurmctld + slurmd +
munged, RLlib training (CartPole) on both sides. Emulated: the Kubernetes API (the test bed's
emulator) and the KubeRay operator (the stand-in runs each RayJob's entrypoint locally).

- `manifests/examples/burst-sweep.yaml` with CI budgets: six trials, Kubernetes holds at most
  two at a time and the rest overflow to SLURM; every trial trains, the Sweep succeeds with the
  right best trial, status, metrics and `kubectl get rlx` count and show each trial's backend,
  and the leaderboard is one list across both;
- Kubernetes trials held waiting (the Ray cluster never comes up) are withdrawn after
  `burstAfterSeconds` and re-placed on SLURM: attempts kept, their RayJobs gone, one SLURM job
  and one result each.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.runinfo import read_progress
from rlops.backends.slurm import SlurmSettings
from tests.conftest import EXAMPLES
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess, names, status_of
from tests.slurm.bridge_process import BridgeProcess
from tests.slurm.slurm_cluster import SlurmCluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slurm, pytest.mark.training]

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "hpc"
FINISHED = ("Succeeded", "Failed", "Stopped")


@pytest.fixture
def operator(kube: KubeTestBed, kube_namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    workdir = tmp_path / "operator"
    workdir.mkdir()
    process = OperatorProcess(kube, kube_namespace, workdir, resync_seconds=2)
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture
def bridge(
    kube: KubeTestBed,
    kube_namespace: str,
    slurm_cluster: SlurmCluster,
    slurm_settings: SlurmSettings,
    tmp_path: Path,
) -> Iterator[BridgeProcess]:
    process = BridgeProcess(kube, kube_namespace, slurm_cluster, slurm_settings, tmp_path,
                            cluster_name=CLUSTER)  # fmt: skip
    try:
        yield process.start()
    finally:
        process.stop()


def burst_sweep(
    name: str, trials: int, parallelism: int, max_parallel: int, burst_after: int, steps: int
) -> dict[str, Any]:
    """manifests/examples/burst-sweep.yaml with CI budgets and the host Python on SLURM."""
    sweep: dict[str, Any] = yaml.safe_load((EXAMPLES / "burst-sweep.yaml").read_text())
    sweep["metadata"]["name"] = name
    spec = sweep["spec"]
    spec["template"]["config"]["training"] = {
        "train_batch_size_per_learner": 500, "minibatch_size": 250, "num_epochs": 2,
    }  # fmt: skip
    spec["template"]["resources"] = {"envRunners": 0}
    spec["template"]["stop"] = {"timesteps": steps}
    spec.update(maxTrials=trials, parallelism=parallelism)
    placement = spec["placement"]
    placement["burstAfterSeconds"] = burst_after
    placement["kubernetes"]["maxParallel"] = max_parallel
    placement["slurm"].update(partition="debug", timeLimit="10", containerRuntime="none")
    return sweep


def apply(kube: KubeTestBed, namespace: str, manifest: dict[str, Any]) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=True)


def finished_sweep(kube: KubeTestBed, ns: str, name: str, timeout: float) -> dict[str, Any]:
    status = wait_until(
        lambda: (s := status_of(kube, "sweep", ns, name)).get("phase") in FINISHED and s,
        timeout,
        f"sweep {name} to finish",
        interval=2.0,
    )
    assert status["phase"] == "Succeeded", status
    return status


def slurm_jobs(cluster: SlurmCluster, trial: str) -> list[str]:
    """Ids of every SLURM job (any state) the bridge submitted for `trial`."""
    out = cluster.run("squeue", "-h", "--states=all", "-o", "%i %j")
    assert out.returncode == 0, out.stderr
    pattern = re.compile(rf"rlops-{re.escape(trial)}-[0-9a-f]{{8}}")
    return [job for job, job_name in (line.split() for line in out.stdout.splitlines())
            if pattern.fullmatch(job_name)]  # fmt: skip


def run_dir(operator: OperatorProcess, bridge: BridgeProcess, ns: str, trial: str, backend: str
            ) -> Path:  # fmt: skip
    base = operator.workdir / "runs" if backend == "kubernetes" else bridge.run_root
    return base / ns / trial


def test_sweep_bursts_from_kubernetes_to_slurm(
    kube: KubeTestBed,
    kube_namespace: str,
    kuberay: Any,
    operator: OperatorProcess,
    bridge: BridgeProcess,
    slurm_cluster: SlurmCluster,
) -> None:
    ns, name = kube_namespace, "burst"
    apply(kube, ns, burst_sweep(name, trials=6, parallelism=3, max_parallel=2, burst_after=600,
                                steps=2000))  # fmt: skip

    # Never more than two of the sweep's trials run or wait on Kubernetes.
    most_on_kubernetes = 0

    def done() -> dict[str, Any] | None:
        nonlocal most_on_kubernetes
        items = kube.kubectl("get", "rlx", "-n", ns, "-o", "yaml", check=True).stdout
        active = [
            i for i in yaml.safe_load(items)["items"]
            if (i.get("status") or {}).get("phase") not in FINISHED
            and i["spec"]["placement"]["backend"] == "kubernetes"
        ]  # fmt: skip
        most_on_kubernetes = max(most_on_kubernetes, len(active))
        status = status_of(kube, "sweep", ns, name)
        return status if status.get("phase") in FINISHED else None

    status = wait_until(done, 420, "the burst sweep to finish", interval=1.0)
    assert status["phase"] == "Succeeded", status
    assert most_on_kubernetes <= 2

    trials = names(kube, "rlx", ns, f"rlops.dev/sweep={name}")
    assert trials == sorted(f"{name}-{i}" for i in range(6))
    statuses = {t: status_of(kube, "rlx", ns, t) for t in trials}
    backends = {t: s["backend"] for t, s in statuses.items()}
    assert set(backends.values()) == {"kubernetes", "slurm"}, backends
    for trial, s in statuses.items():
        assert s["phase"] == "Succeeded" and s["attempts"] == 1, (trial, s)
        records = read_progress(run_dir(operator, bridge, ns, trial, backends[trial]))
        assert records and records[-1].timesteps >= 2000, trial  # trained for real, there
        assert s["result"]["finalObjective"] == pytest.approx(records[-1].episode_return_mean)
        jobs, rayjob_runs = slurm_jobs(slurm_cluster, trial), operator.workdir / "runs" / ns / trial
        if backends[trial] == "slurm":
            assert len(jobs) == 1 and s["backendRef"]["jobId"] == jobs[0], (trial, jobs)
            assert not (rayjob_runs / "progress.jsonl").exists()
        else:
            assert jobs == [] and s["backendRef"]["kind"] == "RayJob", (trial, jobs)

    # Status and metrics count trials per backend.
    per_backend = {b: list(backends.values()).count(b) for b in ("kubernetes", "slurm")}
    assert status["backends"] == per_backend
    assert (status["trials"]["total"], status["trials"]["succeeded"]) == (6, 6)
    metrics = operator.metrics()
    for backend, count in per_backend.items():
        series = (
            f'rlops_sweep_trials_backend{{backend="{backend}",namespace="{ns}",sweep="{name}"}}'
        )
        assert f"{series} {float(count)}" in metrics, series

    # `kubectl get rlx` shows each trial's backend.
    table = kube.kubectl("get", "rlx", "-n", ns, check=True).stdout.splitlines()
    header = table[0].split()
    assert header[:3] == ["NAME", "PHASE", "BACKEND"], header
    shown = {row.split()[0]: row.split()[2] for row in table[1:]}
    assert shown == backends

    # One leaderboard across both backends, best first, and the right best trial.
    objectives = {t: s["result"]["finalObjective"] for t, s in statuses.items()}
    ranked = sorted(objectives, key=lambda t: objectives[t], reverse=True)
    assert status["bestTrial"]["name"] == ranked[0]
    assert status["bestTrial"]["objective"] == pytest.approx(objectives[ranked[0]])
    top = [entry["name"] for entry in status["top"]]
    assert top and top == ranked[: len(top)]


def test_trials_waiting_on_kubernetes_move_to_slurm(
    kube: KubeTestBed,
    kube_namespace: str,
    kuberay: Any,
    operator: OperatorProcess,
    bridge: BridgeProcess,
    slurm_cluster: SlurmCluster,
) -> None:
    ns, name = kube_namespace, "held"
    trials = [f"{name}-0", f"{name}-1"]
    with kuberay.holding():  # Ray clusters never come up: the RayJobs wait in Initializing
        apply(kube, ns, burst_sweep(name, trials=2, parallelism=2, max_parallel=2, burst_after=6,
                                    steps=1000))  # fmt: skip
        wait_until(
            lambda: names(kube, "rayjobs", ns) == trials, 30, "both trials' RayJobs", interval=0.2
        )
        for trial in trials:
            s = status_of(kube, "rlx", ns, trial)
            assert (s.get("backend"), s.get("phase")) == ("kubernetes", "Submitted"), s
        status = finished_sweep(kube, ns, name, timeout=240)

    assert names(kube, "rayjobs", ns) == []  # withdrawn from Kubernetes
    for trial in trials:
        body = yaml.safe_load(kube.kubectl("get", "rlx", trial, "-n", ns, "-o", "yaml").stdout)
        s = body["status"]
        assert body["spec"]["placement"]["backend"] == "slurm"
        assert body["spec"]["placement"]["slurm"]["cluster"] == CLUSTER
        assert (s["backend"], s["phase"], s["attempts"]) == ("slurm", "Succeeded", 1), s
        jobs = slurm_jobs(slurm_cluster, trial)
        assert jobs == [s["backendRef"]["jobId"]]  # one SLURM job, one result
        records = read_progress(run_dir(operator, bridge, ns, trial, "slurm"))
        assert {r.attempt for r in records} == {1} and records[-1].timesteps >= 1000
        assert s["result"]["finalObjective"] == pytest.approx(records[-1].episode_return_mean)
        assert not (operator.workdir / "runs" / ns / trial / "progress.jsonl").exists()
    assert status["backends"] == {"slurm": 2}
    assert (status["trials"]["total"], status["trials"]["succeeded"]) == (2, 2)
