"""Prometheus end to end: a real Prometheus scrapes the real `rlops operator` and the real
`rlops slurm-bridge` (both processes) while a small sweep trains on Kubernetes (API emulator
+ KubeRay stand-in, real RLlib on CartPole) and one RLExperiment trains as a job on the real
SLURM cluster. Through Prometheus' HTTP API (PromQL):

- the sweep's best objective, its trial counts by phase and by backend, and every trial's
  latest mean return equal what the resources' status says (read with the official client);
- the bridge's experiment return equals its status, and its SLURM metrics are there: jobs by
  state, sbatch and squeue durations, the job's queue wait, timed polls, the last poll time;
- both targets answer /readyz.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlops.backends.slurm import SlurmSettings
from tests.builders import experiment, sweep
from tests.kube.fixtures import KubeTestBed
from tests.metrics.prom import Prometheus, by_label, free_port, prometheus, values  # noqa: F401
from tests.operator.harness import OperatorProcess
from tests.slurm.bridge_process import BridgeProcess
from tests.slurm.conftest import slurm_cluster, slurm_settings  # noqa: F401
from tests.slurm.slurm_cluster import SlurmCluster
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slurm, pytest.mark.prometheus, pytest.mark.training]

GROUP, VERSION = "rlops.dev", "v1alpha1"
TINY_PPO = {"train_batch_size_per_learner": 250, "minibatch_size": 125, "num_epochs": 1}
FINISHED = ("Succeeded", "Failed", "Stopped")


@pytest.fixture
def bridge(
    kube: KubeTestBed,
    kube_namespace: str,
    slurm_cluster: SlurmCluster,  # noqa: F811
    slurm_settings: SlurmSettings,  # noqa: F811
    tmp_path: Path,
) -> Iterator[BridgeProcess]:
    process = BridgeProcess(kube, kube_namespace, slurm_cluster, slurm_settings, tmp_path,
                            bridge_id="e2e").start()  # fmt: skip
    try:
        wait_until(process.ready, 60, "the bridge to serve /readyz", interval=0.5)
        yield process
    finally:
        process.stop()


def close(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def test_prometheus_sees_what_the_status_says(
    kube: KubeTestBed,
    kube_namespace: str,
    kuberay: Any,
    operator: OperatorProcess,
    bridge: BridgeProcess,
    prometheus: Any,  # noqa: F811
) -> None:
    import kubernetes.client

    ns = kube_namespace
    op, br = f"127.0.0.1:{operator.metrics_port}", f"127.0.0.1:{bridge.metrics_port}"
    prom: Prometheus = prometheus([op, br])
    api_client = kube.api_client()
    api = kubernetes.client.CustomObjectsApi(api_client)

    grid = (
        sweep("grid", ns)
        .template("config.training", {**TINY_PPO, "lr": 0.0003})
        .template("stop", {"timesteps": 500})
        .template("placement", {"backend": "kubernetes"})
        .param("config.training.lr", "grid", values=[0.0003, 0.003])
        .set("spec.seedsPerTrial", 1)
        .set("spec.parallelism", 2)
        .obj()
    )
    api.create_namespaced_custom_object(GROUP, VERSION, ns, "sweeps", grid)
    hpc = experiment("hpc", ns).config("training", **TINY_PPO).stop(timesteps=500).slurm()
    api.create_namespaced_custom_object(GROUP, VERSION, ns, "rlexperiments", hpc.obj())
    prom.await_targets_up()

    def get(plural: str, name: str) -> dict[str, Any]:
        body = api.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        return dict(body.get("status") or {})

    def finished() -> bool:
        return (
            get("sweeps", "grid").get("phase") in FINISHED
            and get("rlexperiments", "hpc").get("phase") in FINISHED
        )

    wait_until(finished, 240, "the sweep and the SLURM experiment to finish", interval=1.0)
    sweep_status, hpc_status = get("sweeps", "grid"), get("rlexperiments", "hpc")
    assert sweep_status["phase"] == "Succeeded", sweep_status
    assert hpc_status["phase"] == "Succeeded", hpc_status
    items = api.list_namespaced_custom_object(
        GROUP, VERSION, ns, "rlexperiments", label_selector="rlops.dev/sweep=grid"
    )["items"]
    trials = {t["metadata"]["name"]: t["status"] for t in items}
    api_client.close()
    assert len(trials) == 2

    # The operator: the sweep's best objective, trial counts, each trial's return.
    at_op, at_br = f'namespace="{ns}",instance="{op}"', f'namespace="{ns}",instance="{br}"'
    best = sweep_status["bestTrial"]["objective"]
    prom.await_query(
        f'rlops_sweep_best_objective{{{at_op},sweep="grid"}}',
        lambda r: len(r) == 1 and close(values(r)[0], best),
    )
    counts = sweep_status["trials"]
    want_phases = {p.capitalize(): float(counts[p]) for p in
                   ("pending", "running", "succeeded", "failed", "stopped", "paused")}  # fmt: skip
    prom.await_query(
        f'rlops_sweep_trials{{{at_op},sweep="grid"}}',
        lambda r: by_label(r, "phase") == want_phases,
    )
    assert want_phases["Succeeded"] == counts["total"] == 2
    prom.await_value(f'sum(rlops_sweep_trials_backend{{{at_op},sweep="grid"}})', 2.0)
    for name, status in trials.items():
        want = status["progress"]["episodeReturnMean"]
        prom.await_query(
            f'rlops_experiment_episode_return_mean{{{at_op},experiment="{name}",sweep="grid"}}',
            lambda r, want=want: len(r) == 1 and close(values(r)[0], want),
        )
    prom.await_query(
        f'rlops_experiments{{{at_op},backend="kubernetes"}}',
        lambda r: by_label(r, "phase").get("Succeeded") == 2.0,
    )

    # The bridge: its experiment's return, then SLURM's own metrics.
    want = hpc_status["progress"]["episodeReturnMean"]
    prom.await_query(
        f'rlops_experiment_episode_return_mean{{{at_br},experiment="hpc"}}',
        lambda r: len(r) == 1 and close(values(r)[0], want),
    )
    prom.await_query(
        f'rlops_slurm_jobs{{instance="{br}",cluster="hpc"}}',
        lambda r: by_label(r, "state") == {"COMPLETED": 1.0},
    )
    commands = prom.await_query(
        f'rlops_slurm_command_duration_seconds_count{{instance="{br}"}}',
        lambda r: {"sbatch", "squeue"} <= set(by_label(r, "command")),
    )
    assert by_label(commands, "command")["sbatch"] == 1.0
    prom.await_value(f'rlops_slurm_queue_wait_seconds_count{{instance="{br}",cluster="hpc"}}', 1)
    prom.await_query(
        f'rlops_reconcile_duration_seconds_count{{instance="{br}",kind="SlurmPoll"}}',
        lambda r: len(r) == 1 and values(r)[0] > 0,
    )
    prom.await_query(
        f'time() - rlops_bridge_last_poll_timestamp_seconds{{instance="{br}",cluster="hpc"}}',
        lambda r: len(r) == 1 and values(r)[0] < 30,
    )
    assert operator.healthy() and bridge.ready()
