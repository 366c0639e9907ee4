"""`rlops run --backend slurm`: a two-trial sweep whose trials are sbatch jobs on a real
single-node SLURM cluster (munged, slurmctld, slurmd started here), each running the real
runtime with a tiny CartPole budget; then a second run that adopts nothing and re-runs
nothing. Also the exit codes the runner records for finished jobs (pure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rlops.api import Phase
from rlops.runner.layout import SweepLayout
from rlops.runner.slurm_executor import exit_code, run_uid
from tests.builders import sweep
from tests.slurm.slurm_cluster import SlurmCluster, missing_binaries, running_cluster

RLOPS = str(Path(sys.executable).with_name("rlops"))


@pytest.mark.parametrize(
    ("phase", "result_code", "stopped", "code"),
    [
        (Phase.SUCCEEDED, 0, False, 0),
        (Phase.FAILED, 2, False, 2),
        (Phase.FAILED, None, False, 1),
        (Phase.STOPPED, 75, True, 75),  # We cancelled it: it checkpointed.
        (Phase.STOPPED, None, False, 1),  # Cancelled by someone else.
    ],
)
def test_exit_codes_of_finished_jobs(
    phase: Phase, result_code: int | None, stopped: bool, code: int
) -> None:
    assert exit_code(phase, result_code, stopped) == code


def test_the_job_uid_is_stable_per_run_directory(tmp_path: Path) -> None:
    assert run_uid(tmp_path / "a") == run_uid(tmp_path / "a")
    assert run_uid(tmp_path / "a") != run_uid(tmp_path / "b")


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed: {', '.join(missing)} (scripts/setup.sh)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster's daemons run as root")
    with running_cluster() as running:
        yield running


@pytest.mark.slurm
@pytest.mark.training
def test_a_sweep_runs_as_slurm_jobs(cluster: SlurmCluster, tmp_path: Path) -> None:
    manifest = (
        sweep("onslurm")
        .template(
            "config",
            {
                "training": {
                    "train_batch_size_per_learner": 500,
                    "minibatch_size": 128,
                    "num_epochs": 2,
                }
            },
        )
        .template("stop", {"timesteps": 1000})
        .param("config.training.lr", "grid", values=[0.001, 0.0001])
        .set("spec.parallelism", 2)
        .set("spec.placement", {"slurm": {"cluster": "hpc", "python": sys.executable}})
        .obj()
    )
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(manifest))
    root = Path(os.path.realpath(tmp_path)) / "runs"
    env = {**cluster.env, "RLOPS_SLURM_PYTHON": sys.executable, "RLOPS_POLL_SECONDS": "0.5"}
    command = [RLOPS, "run", str(file), "--root", str(root), "--backend", "slurm", "-q"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert first.returncode == 0, first.stdout + first.stderr

    layout = SweepLayout(root / "onslurm")
    results = json.loads(layout.results.read_text())
    assert [t["phase"] for t in results["trials"]] == ["Succeeded", "Succeeded"]
    for name in ("onslurm-0", "onslurm-1"):
        run_dir = layout.trial(name)
        record = json.loads((run_dir / "trial.json").read_text())
        assert record["backend"] == "slurm"
        (job,) = [launch["ref"] for launch in record["launches"]]
        assert job.isdigit()
        assert (run_dir / f"slurm-{job}.out").exists()  # The job ran in the trial's directory.
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "succeeded" and result["timesteps"] >= 1000
    assert len(results["leaderboard"]) == 2

    mtimes = {n: (layout.trial(n) / "result.json").stat().st_mtime_ns for n in layout.trial_names()}
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    for name, mtime in mtimes.items():
        assert (layout.trial(name) / "result.json").stat().st_mtime_ns == mtime
