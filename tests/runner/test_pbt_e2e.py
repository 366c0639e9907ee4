"""Population-based training end to end with `rlops run`: manifests/examples/pbt-sweep.yaml
(real PPO on CartPole, the real runtime) exploits and reaches its goal, each exploit recorded
in trial.json, results.json, the leaderboard and the status's top trials, its checkpoint
copied in by the runtime with the trial's own counters, and the report's parameter
schedules drawn; and the tabular-Q PBT sweep through `rlops run --backend slurm` on a real
SLURM cluster, whose exploits resume as SLURM jobs."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api.runinfo import read_progress
from rlops.runner.layout import SweepLayout
from tests.conftest import EXAMPLES
from tests.runner.pbt_manifest import tabular_pbt
from tests.runner.test_command_sweep import rlops_run
from tests.slurm.slurm_cluster import missing_binaries, running_cluster


def check_exploits(layout: SweepLayout) -> list[dict[str, Any]]:
    """Every exploit is recorded alike in trial.json, results.json and spec.yaml, was copied
    in once by the runtime, and the trial's iterations went on from its own; returns the
    exploited trials of results.json."""
    results = json.loads(layout.results.read_text())
    names = {t["name"] for t in results["trials"]}
    exploited = [t for t in results["trials"] if t["exploits"]]
    for trial in exploited:
        run_dir = layout.trial(trial["name"])
        record = json.loads((run_dir / "trial.json").read_text())
        assert record["exploits"] == trial["exploits"]
        last = trial["exploits"][-1]
        assert trial["parameters"] == last["parameters"] == record["parameters"]
        assert record["initialParameters"] != record["parameters"]
        for e in trial["exploits"]:
            assert e["source"] in names and e["source"] != trial["name"]
        spec = yaml.safe_load((run_dir / "spec.yaml").read_text())["spec"]
        exploit = {"source": f"../{last['source']}", "iteration": last["iteration"]}
        assert spec["checkpoint"]["exploit"] == exploit
        assert json.loads((run_dir / "exploit.json").read_text()) == exploit
        outputs = [*(run_dir / "attempts").glob("*.log"), *run_dir.glob("slurm-*.out")]
        logs = "".join(p.read_text() for p in outputs)
        assert f"exploit: continuing from {last['source']}'s checkpoint" in logs
        iterations = [p.iteration for p in read_progress(run_dir)]
        assert iterations == list(range(1, len(iterations) + 1))  # its own counters go on
        assert iterations[-1] > last["iteration"]  # it trained after the exploit
    return exploited


@pytest.mark.training
def test_the_pbt_example_exploits_and_reaches_the_goal(tmp_path: Path) -> None:
    manifest = yaml.safe_load((EXAMPLES / "pbt-sweep.yaml").read_text())
    goal = manifest["spec"]["objective"]["goal"]
    # The whole population at once: the bottom trial is due for its exploit at the first
    # perturbation interval while the others train, not only once a slot frees (with two
    # slots a lucky first trial could reach the goal, ending the sweep, before any exploit).
    parallel = f"spec.parallelism={manifest['spec']['maxTrials']}"
    done = rlops_run(EXAMPLES / "pbt-sweep.yaml", tmp_path / "runs", "--set", parallel,
                     timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(tmp_path / "runs" / manifest["metadata"]["name"])
    results = json.loads(layout.results.read_text())
    assert results["status"]["phase"] == "Succeeded", done.stdout
    # A real goal: CartPole return 150.
    assert results["leaderboard"][0]["objective"] >= goal, done.stdout
    assert len(results["trials"]) <= manifest["spec"]["maxTrials"]
    exploited = check_exploits(layout)
    assert exploited, done.stdout
    assert "exploits" in done.stdout
    rows = {r["configuration"]: r for r in csv.DictReader(layout.leaderboard.open())}
    top = {t["name"]: t for t in results["status"]["top"]}
    for trial in exploited:
        trail = " ".join(f"{e['iteration']}:{e['source']}" for e in trial["exploits"])
        if trial["name"] in rows:
            assert rows[trial["name"]]["exploits"] == trail
            assert top[trial["name"]]["exploits"] == trial["exploits"]
    for key in manifest["spec"]["parameters"]:
        assert (layout.report / f"schedule_{key}.png").stat().st_size > 0


@pytest.mark.slurm
def test_pbt_exploits_on_slurm(tmp_path: Path) -> None:
    if missing_binaries() or os.geteuid() != 0:
        pytest.skip("needs SLURM's binaries and root (the test cluster's daemons run as root)")
    manifest = tabular_pbt()
    manifest["spec"]["placement"] = {"backend": "slurm", "slurm": {"cluster": "hpc"}}
    file = tmp_path / "tabular-pbt.yaml"
    file.write_text(yaml.safe_dump(manifest))
    root = Path(os.path.realpath(tmp_path)) / "runs"
    with running_cluster() as cluster:
        env = {**cluster.env, "RLOPS_SLURM_PYTHON": sys.executable, "RLOPS_POLL_SECONDS": "0.5"}
        done = rlops_run(file, root, "--backend", "slurm", env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(root / "tabular-pbt")
    exploited = check_exploits(layout)
    assert exploited, done.stdout
    for trial in exploited:
        record = json.loads((layout.trial(trial["name"]) / "trial.json").read_text())
        assert record["backend"] == "slurm"
        jobs = [launch["ref"] for launch in record["launches"]]
        assert len(jobs) >= 2  # the run before the exploit, and the one after, as SLURM jobs
        resumed = (layout.trial(trial["name"]) / f"slurm-{jobs[-1]}.out").read_text()
        assert "resumed from" in resumed  # the program continued from a checkpoint
