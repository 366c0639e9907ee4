"""`rlops logs`: a local trial's latest attempt log, a SLURM job's output file (found
from the run directory or from the RLExperiment's backendRef in a cluster), the
driver pod of a RayJob, and `-f` following a log as a real process writes it,
moving to the next attempt's file and stopping when the trial has finished."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from rlops.cli import main
from rlops.cli.logs import driver_pod
from tests.builders import experiment
from tests.cli.rundirs import write_sweep, write_trial
from tests.kube.fixtures import KubeTestBed, kube, kube_namespace

__all__ = ["kube", "kube_namespace"]

ROOT = Path(__file__).resolve().parents[2]


def test_logs_print_the_latest_attempt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = write_sweep(tmp_path, "grid", [250])
    run_dir = layout.trial("grid-0")
    write_trial(run_dir, "grid-0", 0, [9.0], 75, log="attempt one\n")
    (run_dir / "attempts" / "2.log").write_text("attempt two\n")
    assert main(["logs", "grid-0", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "attempt two\n"
    assert main(["logs", "grid-0", "--attempt", "1", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "attempt one\n"


def test_logs_of_a_slurm_run_directory_print_the_newest_job_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "ml" / "exp"
    run_dir.mkdir(parents=True)
    (run_dir / "slurm-41.out").write_text("first job\n")
    (run_dir / "slurm-142.out").write_text("requeued job\n")
    assert main(["logs", str(run_dir)]) == 0
    assert capsys.readouterr().out == "requeued job\n"


def test_logs_of_an_unknown_trial_say_where_they_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", "ghost", "--root", str(tmp_path)]) == 1
    assert f"no run directory 'ghost' under {tmp_path}" in capsys.readouterr().err


WRITER = textwrap.dedent(
    """
    import json, pathlib, sys, time
    run = pathlib.Path(sys.argv[1])
    log1, log2 = run / "attempts" / "1.log", run / "attempts" / "2.log"
    with log1.open("a") as f:
        f.write("iteration 1\\n"); f.flush()
        while not (run / "go").exists():
            time.sleep(0.05)
        for i in (2, 3):
            f.write(f"iteration {i}\\n"); f.flush(); time.sleep(0.1)
        f.write("requeued: checkpoint saved\\n")
    with log2.open("a") as f:
        for i in (4, 5):
            f.write(f"iteration {i}\\n"); f.flush(); time.sleep(0.1)
        f.write("done\\n")
    (run / "result.json").write_text(json.dumps(
        {"status": "succeeded", "exitCode": 0, "iteration": 5, "timesteps": 2500, "attempt": 1}
    ))
    """
)


def test_follow_streams_a_growing_log_across_attempts_until_the_trial_ends(tmp_path: Path) -> None:
    layout = write_sweep(tmp_path, "grid", [250])
    run_dir = layout.trial("grid-0")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir)])
    try:
        record = write_trial(run_dir, "grid-0", 0, [], None, pid=writer.pid)
        assert record.launches[0].exit_code is None
        follower = subprocess.Popen(
            [sys.executable, "-m", "rlops", "logs", "-f", "grid-0", "--root", str(tmp_path),
             "--poll", "0.1"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        assert follower.stdout is not None
        # Output arrives while the trial still runs: the first line before the rest exists.
        first = follower.stdout.readline()
        assert first == "iteration 1\n"
        assert follower.poll() is None
        (run_dir / "go").touch()
        rest, _ = follower.communicate(timeout=60)
    finally:
        writer.wait(timeout=30)
    assert follower.returncode == 0
    assert (first + rest).splitlines() == [
        "iteration 1",
        "iteration 2",
        "iteration 3",
        "requeued: checkpoint saved",
        "==> attempts/2.log <==",
        "iteration 4",
        "iteration 5",
        "done",
    ]


def test_the_driver_pod_is_the_submitter_else_the_newest_head() -> None:
    def pod(name: str, created: str, **labels: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "creationTimestamp": created, "labels": labels}}

    head = {"ray.io/node-type": "head"}
    heads = [
        pod("rc-old-head", "2025-01-01T00:00:00Z", **head),
        pod("rc-new-head", "2025-01-02T00:00:00Z", **head),
    ]
    worker = pod("rc-worker", "2025-01-03T00:00:00Z", **{"ray.io/node-type": "worker"})
    assert driver_pod([*heads, worker], "exp") == "rc-new-head"
    submitter = pod("exp-abcde", "2025-01-01T00:00:00Z", **{"job-name": "exp"})
    other = pod("other-xyz", "2025-01-05T00:00:00Z", **{"job-name": "other"})
    assert driver_pod([*heads, worker, submitter, other], "exp") == "exp-abcde"
    assert driver_pod([worker], "exp") is None


def test_logs_of_a_slurm_experiment_in_a_cluster_come_from_its_run_directory(
    kube: KubeTestBed, kube_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import kubernetes.client

    run_dir = tmp_path / "exp"
    run_dir.mkdir()
    (run_dir / "slurm-7.out").write_text("training on node c1\niteration 1\n")
    (run_dir / "result.json").write_text(json.dumps({"status": "succeeded", "exitCode": 0}))
    body = experiment("hpc-exp").slurm().set("spec.storage.path", str(run_dir)).obj()
    status = {
        "phase": "Succeeded",
        "backend": "slurm",
        "backendRef": {"kind": "SlurmJob", "cluster": "hpc", "jobId": "7"},
    }
    with kube.api_client() as client:
        api = kubernetes.client.CustomObjectsApi(client)
        api.create_namespaced_custom_object(
            "rlops.dev", "v1alpha1", kube_namespace, "rlexperiments", body
        )
        api.patch_namespaced_custom_object_status(
            "rlops.dev", "v1alpha1", kube_namespace, "rlexperiments", "hpc-exp", {"status": status}
        )
    args = ["logs", "hpc-exp", "--kubeconfig", str(kube.kubeconfig), "-n", kube_namespace]
    assert main(args) == 0
    assert capsys.readouterr().out == "training on node c1\niteration 1\n"
    started = time.monotonic()
    assert main([*args, "-f"]) == 0  # Finished already: prints and returns.
    assert capsys.readouterr().out == "training on node c1\niteration 1\n"
    assert time.monotonic() - started < 10
    assert main(["logs", "nope", "--kubeconfig", str(kube.kubeconfig), "-n", kube_namespace]) == 1
    assert f"no RLExperiment 'nope' in namespace {kube_namespace}" in capsys.readouterr().err
