"""Multi-node RLlib on a real 3-node SLURM cluster (scripts/slurm-cluster.sh --nodes 3: one
slurmd per network namespace, each node its own address on a bridge).

An RLExperiment with `resources.nodes: 3` trains through `rlops run --backend slurm`: the
Ray head starts on the first node, the workers join it over the namespaces' network, and
Ray itself places the env runners on the other nodes (result.json's runtime block, read
from Ray's node table). A node that dies mid-run (link down, slurmd and its processes
killed) ends the job NODE_FAIL; SLURM requeues it, and when the node is back the next
attempt resumes from the last checkpoint to Succeeded with continued iterations. An env
runner process killed under `fault_tolerance.restart_failed_env_runners` is restarted by
RLlib and training goes on. The SLURM bridge trains the same 3-node experiment from the
Kubernetes API emulator. Everything else is real: no stand-ins for SLURM, Ray or RLlib.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api import RLExperiment
from rlops.api.runinfo import read_progress, read_result
from rlops.backends.slurm import CliSlurmClient, SlurmSettings, default_run_dir
from tests.builders import ExperimentBuilder, experiment
from tests.kube.fixtures import KubeTestBed
from tests.slurm.slurm_cluster import SlurmCluster, missing_binaries, running_cluster
from tests.slurm.test_bridge import World
from tests.waiting import wait_until

RLOPS = str(Path(sys.executable).with_name("rlops"))
TINY = {
    "training": {"train_batch_size_per_learner": 200, "minibatch_size": 100, "num_epochs": 1},
    "env_runners": {"rollout_fragment_length": 100},
}
pytestmark = [pytest.mark.slurm, pytest.mark.training]


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed: {', '.join(missing)} (scripts/setup.sh)")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("the 3-node cluster needs root and iproute2 (network namespaces)")
    if subprocess.run(["unshare", "--net", "true"], check=False).returncode != 0:
        pytest.skip("network namespaces are not permitted here (CAP_NET_ADMIN)")
    with running_cluster(nodes=3) as running:
        yield running


def three_nodes(name: str, iterations: int, **config: Any) -> dict[str, Any]:
    """PPO on CartPole over 3 nodes: the driver on the head, one env runner per other node."""
    return (
        experiment(name)
        .set("spec.resources", {"nodes": 3, "envRunners": 2, "cpusPerRunner": 1, "driverCpus": 1})
        .set("spec.config", {**TINY, **config})
        .set("spec.checkpoint", {"frequency": 1})
        .stop(iterations=iterations)
        .slurm(python=sys.executable)
        .obj()
    )


def start_run(
    manifest: dict[str, Any], tmp_path: Path, cluster: SlurmCluster
) -> subprocess.Popen[str]:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(manifest))
    argv = [RLOPS, "run", str(path), "--backend", "slurm", "--root", str(tmp_path / "runs"),
            "--quiet", "--no-report"]  # fmt: skip
    return subprocess.Popen(
        argv, env=cluster.env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def finish(process: subprocess.Popen[str], timeout: float = 420) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"rlops run did not finish in {timeout:.0f}s:\n{output}") from None
    assert process.returncode == 0, output
    return output


def node_addr(cluster: SlurmCluster, node: str) -> str:
    shown = cluster.run("scontrol", "show", "node", node).stdout
    match = re.search(r"NodeAddr=(\S+)", shown)
    assert match, shown
    return match.group(1)


def job_log(run_dir: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(run_dir.glob("slurm-*.out")))


def test_a_three_node_experiment_trains_on_three_ray_nodes(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    finish(start_run(three_nodes("three", iterations=3), tmp_path, cluster))
    run_dir = tmp_path / "runs" / "three"
    result = read_result(run_dir)
    assert result is not None and result.status == "succeeded", job_log(run_dir)
    runtime = json.loads((run_dir / "result.json").read_text())["runtime"]
    assert runtime["rayNodes"] == 3
    # The head (its GCS) is on the first node; Ray placed the env runners elsewhere.
    head = runtime["rayHead"].rsplit(":", 1)[0]
    addresses = {node: node_addr(cluster, node) for node in cluster.node_names}
    assert head == addresses["node1"]
    runners = runtime["envRunnerNodes"]
    assert len(runners) == 2 and head not in runners
    assert set(runners) <= {addresses["node2"], addresses["node3"]}
    ready = re.search(r"Ray cluster of 3/3 nodes ready in ([\d.]+) s", job_log(run_dir))
    assert ready, job_log(run_dir)
    print(f"allocation to a ready 3-node Ray cluster: {ready.group(1)} s")


def test_a_lost_node_requeues_the_job_and_it_resumes_from_its_checkpoint(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    run = start_run(three_nodes("lost", iterations=40), tmp_path, cluster)
    run_dir = tmp_path / "runs" / "lost"
    try:
        wait_until(lambda: len(read_progress(run_dir)) >= 3, 240, "three iterations")
        cluster.kill_node("node3")

        def requeued() -> bool:
            shown = cluster.run("scontrol", "show", "job", "--oneline").stdout
            return "Restarts=1" in shown

        wait_until(requeued, 120, "SLURM to requeue the job after node3 failed")
        before = read_progress(run_dir)
    finally:
        cluster.start_node("node3")
    finish(run)
    result = read_result(run_dir)
    assert result is not None and result.status == "succeeded", job_log(run_dir)
    assert result.attempt == 2 and result.iteration == 40
    records = read_progress(run_dir)
    first = [r for r in records if r.attempt == 1]
    second = [r for r in records if r.attempt == 2]
    # The second attempt continues where the first one's last checkpoint was.
    assert first and second and len(first) <= len(before)
    assert second[0].iteration == first[-1].iteration + 1
    assert second[0].timesteps > first[-1].timesteps


def ray_processes(cluster: SlurmCluster, node: int, title: str) -> list[int]:
    """Pids of processes in node `node`'s network namespace whose command line has `title`."""
    prefix = os.environ.get("RLOPS_SLURM_NET_PREFIX", "rlops-")
    out = subprocess.run(["ip", "netns", "pids", f"{prefix}node{node}"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    pids = []
    for pid in out.stdout.split():
        with_title = Path(f"/proc/{pid}/cmdline")
        try:
            if title in with_title.read_bytes().decode(errors="replace"):
                pids.append(int(pid))
        except OSError:
            continue
    return pids


def test_a_killed_env_runner_is_restarted_and_training_goes_on(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    manifest = three_nodes(
        "runner", iterations=30, fault_tolerance={"restart_failed_env_runners": True}
    )
    run = start_run(manifest, tmp_path, cluster)
    run_dir = tmp_path / "runs" / "runner"
    wait_until(lambda: len(read_progress(run_dir)) >= 3, 240, "three iterations")
    victims = ray_processes(cluster, 2, "EnvRunner")
    assert len(victims) == 1, victims
    os.kill(victims[0], 9)
    finish(run)
    result = read_result(run_dir)
    assert result is not None and result.status == "succeeded", job_log(run_dir)
    assert result.attempt == 1 and result.iteration == 30
    last = read_progress(run_dir)[-1].metrics
    assert last["fault_tolerance/num_remote_worker_restarts"] >= 1
    assert last["fault_tolerance/num_healthy_workers"] == 2


@pytest.mark.e2e
def test_the_bridge_trains_a_three_node_experiment(
    cluster: SlurmCluster, kube: KubeTestBed, kube_namespace: str, tmp_path: Path
) -> None:
    settings = SlurmSettings(run_root=tmp_path / "runs", python=sys.executable)
    world = World(kube, kube_namespace, CliSlurmClient(settings, env=cluster.env), settings)
    try:
        body = three_nodes("bridged", iterations=2)
        world.create(ExperimentBuilder(body))
        world.poll_until(
            world.bridge(),
            lambda: world.status("bridged").get("phase") in ("Succeeded", "Failed", "Stopped"),
            timeout=420,
        )
        status = world.status("bridged")
        assert status["phase"] == "Succeeded", status
        experiment_body = world.get("bridged")
        run_dir = default_run_dir(RLExperiment.model_validate(experiment_body), settings)
        runtime = json.loads((run_dir / "result.json").read_text())["runtime"]
        assert runtime["rayNodes"] == 3
        assert runtime["rayHead"].rsplit(":", 1)[0] == node_addr(cluster, "node1")
        assert node_addr(cluster, "node1") not in runtime["envRunnerNodes"]
    finally:
        world.close()
