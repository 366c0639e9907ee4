"""The image, run with podman: it trains an RLExperiment as its user (10001) with a read-only
root filesystem and a mounted run directory, its root really is read-only, the operator and
the SLURM bridge entry points start in it (against the Kubernetes test bed's API, on the
host's network) and serve their health endpoints, and the SLURM batch script's podman
launcher removes the container of a `podman run` it killed.

Real: the image built from the Dockerfile by scripts/build-image.sh, podman and runc, RLlib
training. The Kubernetes API is the test bed's emulator.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rlops.api import RLExperiment
from rlops.api.runinfo import RESULT_FILE, read_result
from rlops.backends.slurm import SlurmSettings, render_batch_script
from tests.builders import experiment
from tests.containers.podman import IMAGE_PYTHON, IMAGE_UID
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.containers


def podman_run(
    env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", "run", "--rm", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.training
def test_trains_as_its_user_with_a_read_only_root(
    image: str, podman_settings: dict[str, str], run_dir: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "manifest.yaml"
    body = experiment("in-image").set("spec.stop", {"iterations": 2}).set("spec.seed", 1).obj()
    manifest.write_text(yaml.safe_dump(body))
    proc = podman_run(
        podman_settings,
        "--read-only", "--env=HOME=/tmp",
        f"--volume={run_dir}:/data/run", f"--volume={manifest}:/config/manifest.yaml:ro",
        image, "rlops", "train", "--spec", "/config/manifest.yaml", "--run-dir", "/data/run",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = read_result(run_dir)
    assert result is not None and result.status == "succeeded", result
    assert result.iteration == 2
    assert result.runtime is not None
    assert result.runtime.python == IMAGE_PYTHON  # the image's interpreter trained
    assert result.runtime.ray_nodes == 1
    assert (run_dir / RESULT_FILE).stat().st_uid == IMAGE_UID


def test_the_root_filesystem_is_read_only_and_the_user_is_10001(
    image: str, podman_settings: dict[str, str]
) -> None:
    proc = podman_run(
        podman_settings, "--read-only", image, "sh", "-c", "id -u; touch /opt/rlops/x"
    )
    assert proc.returncode != 0
    assert proc.stdout.split()[0] == str(IMAGE_UID)
    assert "Read-only file system" in proc.stderr


@pytest.fixture
def kubeconfig(kube: KubeTestBed, tmp_path: Path) -> Path:
    """The test bed's kubeconfig, readable by the image's user."""
    path = tmp_path / "kubeconfig"
    path.write_text(kube.kubeconfig.read_text())
    path.chmod(0o644)
    return path


@pytest.fixture
def container_name(tmp_path: Path) -> Iterator[str]:
    name = f"rlops-test-{tmp_path.name}".lower()[:60]
    yield name
    subprocess.run(["podman", "rm", "--force", "--time=5", name], capture_output=True)


def healthy(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("entry_point", "port_variable"),
    [
        (["operator", "-v"], "RLOPS_METRICS_PORT"),
        (["slurm-bridge", "--cluster", "hpc", "--poll-interval", "1"], "RLOPS_BRIDGE_METRICS_PORT"),
    ],
)
def test_the_operator_and_the_bridge_start_in_the_image(
    image: str,
    podman_settings: dict[str, str],
    kubeconfig: Path,
    kube_namespace: str,
    container_name: str,
    entry_point: list[str],
    port_variable: str,
) -> None:
    port = free_port()
    subprocess.run(
        ["podman", "run", "--detach", f"--name={container_name}", "--read-only",
         "--network=host", "--env=HOME=/tmp", "--env=KUBECONFIG=/config/kubeconfig",
         f"--volume={kubeconfig}:/config/kubeconfig:ro", f"--env={port_variable}={port}",
         "--env=RLOPS_BRIDGE_METRICS_HOST=127.0.0.1", "--env=RLOPS_HOST=127.0.0.1",
         image, "rlops", *entry_point, "-n", kube_namespace],
        env=podman_settings, check=True, capture_output=True, text=True,
    )  # fmt: skip

    def serving() -> bool:
        state = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Running}}", container_name],
            env=podman_settings, capture_output=True, text=True,
        )  # fmt: skip
        if state.stdout.strip() != "true":
            logs = subprocess.run(
                ["podman", "logs", container_name], capture_output=True, text=True
            )
            raise AssertionError(f"{entry_point[0]} exited:\n{logs.stdout}{logs.stderr}"[-3000:])
        return healthy(port, "/healthz")

    wait_until(serving, 120, f"{entry_point[0]} in the image to serve /healthz", interval=0.5)


def test_a_killed_podman_run_of_a_batch_script_leaves_no_container(
    image: str, podman_settings: dict[str, str], run_dir: Path
) -> None:
    """The batch script's podman launcher, run by bash with the image: when the script kills
    `podman run` (its stop watchdog does), the container goes when the script ends."""
    body = experiment("cleanup").set("spec.image", image).slurm(containerRuntime="podman").obj()
    body["metadata"]["uid"] = "r15-cleanup"
    settings = SlurmSettings(run_root=run_dir)
    script = render_batch_script(RLExperiment.model_validate(body), run_dir, settings)
    prelude = script[script.index("BINDS=(") : script.index("PYTHON=(")]
    job = f"cleanup-{run_dir.parent.name}"
    label = f"label=rlops.dev/slurm-job={job}"
    body_of_script = (
        '"${RUN[@]}" sleep 300 &\nPID=$!\n'
        f'until podman ps -q --filter "{label}" | grep -q .; do sleep 0.2; done\n'
        'echo started\nkill -KILL "$PID"\nwait "$PID"\nexit 0\n'
    )
    proc = subprocess.run(
        ["bash", "-c", prelude + body_of_script],
        env={**podman_settings, "SLURM_JOB_ID": job, "RUN_DIR": str(run_dir)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.stdout.strip() == "started", proc.stderr
    left = subprocess.run(
        ["podman", "ps", "-a", "-q", "--filter", label],
        env=podman_settings, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert left.stdout.strip() == ""
