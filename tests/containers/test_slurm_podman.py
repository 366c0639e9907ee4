"""`placement.slurm.containerRuntime: podman` on the real single-node SLURM cluster: `rlops run
--backend slurm` and the SLURM bridge (an RLExperiment in the Kubernetes test bed's API) train
an RLExperiment whose batch script runs the runtime in the image (result.json names the
image's interpreter), and a job signalled for its time limit
checkpoints inside the container, exits 75 through podman, is requeued by SLURM and
resumes from its checkpoint in the container.

Real: slurmctld/slurmd/munged, sbatch, the batch script, podman and runc, the image, RLlib.
The Kubernetes API of the bridge test is the test bed's emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api import RLExperiment
from rlops.api.runinfo import read_result
from rlops.backends.slurm import SCRIPT_FILE, CliSlurmClient, SlurmSettings, default_run_dir
from rlops.backends.slurm.runs import JOB_RECORD
from tests.containers.podman import IMAGE_PYTHON
from tests.kube.fixtures import KubeTestBed
from tests.slurm.slurm_cluster import SlurmCluster
from tests.slurm.test_bridge import World, cartpole
from tests.waiting import wait_until

pytestmark = [pytest.mark.containers, pytest.mark.slurm, pytest.mark.training]

RLOPS = str(Path(sys.executable).with_name("rlops"))


def in_image(name: str, image: str, stop: dict[str, Any], **slurm: Any) -> dict[str, Any]:
    return (
        cartpole(name, containerRuntime="podman", **slurm)
        .set("spec.image", image)
        .set("spec.seed", 1)
        .set("spec.stop", stop)
        .obj()
    )


def start_run(
    manifest: dict[str, Any], tmp_path: Path, cluster: SlurmCluster, podman: dict[str, str]
) -> tuple[subprocess.Popen[str], Path]:
    """`rlops run FILE --backend slurm` in the background; returns it and the run directory."""
    file = tmp_path / "experiment.yaml"
    file.write_text(yaml.safe_dump(manifest))
    root = Path(os.path.realpath(tmp_path)) / "runs"
    env = {**podman, **cluster.env, "RLOPS_POLL_SECONDS": "0.5"}
    command = [RLOPS, "run", str(file), "--root", str(root), "--backend", "slurm", "-q"]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return proc, root / manifest["metadata"]["name"]


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"rlops run did not finish in {timeout} s:\n{out[-3000:]}") from None
    assert proc.returncode == 0, out[-3000:]
    return out


def job_output(run_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(run_dir.glob("slurm-*.out")))


def test_rlops_run_backend_slurm_trains_in_the_image(
    cluster: SlurmCluster, image: str, podman_settings: dict[str, str], tmp_path: Path
) -> None:
    manifest = in_image("podman-job", image, {"iterations": 2})
    proc, run_dir = start_run(manifest, tmp_path, cluster, podman_settings)
    finish(proc, timeout=420)
    result = read_result(run_dir)
    assert result is not None and result.status == "succeeded", job_output(run_dir)[-3000:]
    assert result.iteration == 2
    assert result.runtime is not None
    assert result.runtime.python == IMAGE_PYTHON  # trained by the image's interpreter
    assert "RUN=(podman run" in (run_dir / SCRIPT_FILE).read_text()


def test_a_time_limit_requeue_resumes_from_its_checkpoint_in_the_container(
    cluster: SlurmCluster, image: str, podman_settings: dict[str, str], tmp_path: Path
) -> None:
    # As tests/slurm/test_bridge.py's requeue test: one-minute jobs with USR1 5 s before the
    # limit; the first job gets that same signal from the test (`scancel --signal=USR1
    # --batch`, what SLURM sends) once it has trained an iteration, later ones SLURM's own.
    # Four iterations: more than the first job trains after its signal.
    manifest = in_image(
        "podman-requeue", image, {"iterations": 4}, timeLimit="1", signalSeconds=5,
        maxRequeues=6,
    )  # fmt: skip
    proc, run_dir = start_run(manifest, tmp_path, cluster, podman_settings)
    progress = run_dir / "progress.jsonl"

    def trained_an_iteration() -> bool:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        return progress.exists() and bool(progress.read_text())

    wait_until(trained_an_iteration, 300, "the first job to train an iteration in the image")
    job_id = json.loads((run_dir / JOB_RECORD).read_text())["jobId"]
    sent = cluster.run("scancel", "--signal=USR1", "--batch", str(job_id))
    assert sent.returncode == 0, sent.stderr
    finish(proc, timeout=540)

    records = [json.loads(line) for line in progress.read_text().splitlines()]
    attempts = [r["attempt"] for r in records]
    assert len(set(attempts)) >= 2 and attempts == sorted(attempts)
    timesteps = [r["timesteps"] for r in records]
    first_of_second = attempts.index(sorted(set(attempts))[1])
    assert timesteps[first_of_second] > timesteps[first_of_second - 1]  # resumed, not restarted
    output = job_output(run_dir)
    assert "requeueing for attempt 2" in output
    assert "runtime exited 75 (attempt 1)" in output  # the exit code came back through podman
    result = read_result(run_dir)
    assert result is not None and result.status == "succeeded"
    assert result.runtime is not None and result.runtime.python == IMAGE_PYTHON


def test_the_bridge_trains_an_experiment_in_the_image(
    cluster: SlurmCluster,
    image: str,
    podman_settings: dict[str, str],
    kube: KubeTestBed,
    kube_namespace: str,
    tmp_path: Path,
) -> None:
    settings = SlurmSettings(run_root=Path(os.path.realpath(tmp_path)) / "runs", retries=20)
    client = CliSlurmClient(settings, env={**podman_settings, "SLURM_CONF": str(cluster.conf)})
    world = World(kube, kube_namespace, client, settings)
    try:
        body = world.create(
            cartpole("bridged", containerRuntime="podman")
            .set("spec.image", image)
            .set("spec.stop", {"iterations": 2})
        )
        world.poll_until(
            world.bridge(),
            lambda: world.status("bridged").get("phase") in ("Succeeded", "Failed", "Stopped"),
            timeout=420,
        )
        status = world.status("bridged")
    finally:
        world.close()
    run_dir = default_run_dir(RLExperiment.model_validate(body), settings)
    assert status["phase"] == "Succeeded", (status, job_output(run_dir)[-3000:])
    result = read_result(run_dir)
    assert result is not None and result.runtime is not None
    assert result.runtime.python == IMAGE_PYTHON
