"""The runner's loop with a fast stand-in trainer: packing onto CPUs and shared GPUs,
the parallelism cap, retries, requeues after an outside SIGTERM, ASHA early stops,
and what a second run of the same experiment does.

The stand-in (fake_trainer.py) keeps the runtime's run-directory contract; the real
runtime trains in test_e2e_*.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from rlops.api import Phase
from rlops.backends.packing import PackingError
from tests.builders import experiment, sweep
from tests.runner.helpers import max_overlap, run_manifest
from tests.waiting import wait_until


def fake_sweep(name: str, lrs: list[float], iterations: int = 6, **env: object) -> dict:
    return (
        sweep(name)
        .template("stop", {"iterations": iterations})
        .template("environment.config", {"seconds_per_iteration": 0.05, **env})
        .param("config.training.lr", "grid", values=lrs)
        .set("spec.parallelism", len(lrs))
        .obj()
    )


@pytest.mark.parametrize(
    ("cpus", "parallelism", "expected"),
    [(2, 4, 2), (8, 3, 3)],
    ids=["cpus-limit", "parallelism-limit"],
)
def test_trials_run_side_by_side_up_to_cpus_and_parallelism(
    tmp_path: Path, cpus: int, parallelism: int, expected: int
) -> None:
    manifest = fake_sweep("pack", [0.001, 0.002, 0.003, 0.004, 0.005, 0.006], iterations=8)
    manifest["spec"]["parallelism"] = parallelism
    outcome = run_manifest(manifest, tmp_path, cpus=cpus)
    assert outcome.code == 0, outcome.output
    records = [outcome.record(f"pack-{i}") for i in range(6)]
    assert all(r.launches[-1].exit_code == 0 for r in records)
    assert max_overlap(records) == expected


def test_fractional_gpus_share_one_device(tmp_path: Path) -> None:
    manifest = fake_sweep("gpu", [0.001, 0.002, 0.003, 0.004], iterations=8)
    manifest["spec"]["template"]["resources"] = {"envRunners": 0, "gpusPerLearner": 0.5}
    outcome = run_manifest(manifest, tmp_path, cpus=8, gpus=(3,))
    assert outcome.code == 0, outcome.output
    records = [outcome.record(f"gpu-{i}") for i in range(4)]
    assert max_overlap(records) == 2  # Two halves of device 3 at a time.
    for i in range(4):
        env = json.loads((outcome.layout.trial(f"gpu-{i}") / "env-1.json").read_text())
        assert env["CUDA_VISIBLE_DEVICES"] == "3"
        assert env["OMP_NUM_THREADS"] == "1"


def test_cpu_only_trials_see_no_gpu(tmp_path: Path) -> None:
    outcome = run_manifest(fake_sweep("cpu", [0.001]), tmp_path, cpus=2, gpus=(0, 1))
    env = json.loads((outcome.layout.trial("cpu-0") / "env-1.json").read_text())
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def test_a_failed_trial_is_retried_until_max_attempts(tmp_path: Path) -> None:
    manifest = fake_sweep("retry", [0.001, 0.002], fail_attempts=1)
    manifest["spec"]["maxAttempts"] = 2
    outcome = run_manifest(manifest, tmp_path)
    assert outcome.code == 0, outcome.output
    for name in ("retry-0", "retry-1"):
        record = outcome.record(name)
        assert [(launch.kind, launch.exit_code) for launch in record.launches] == [
            ("start", 1),
            ("retry", 0),
        ]
    trials = {t["name"]: t for t in outcome.results()["trials"]}
    assert trials["retry-0"]["attempts"] == 2
    assert trials["retry-0"]["phase"] == "Succeeded"


def test_without_retries_a_failed_trial_stays_failed(tmp_path: Path) -> None:
    outcome = run_manifest(fake_sweep("fail", [0.001], fail_attempts=1), tmp_path)
    assert outcome.code == 1
    assert len(outcome.record("fail-0").launches) == 1
    assert outcome.results()["status"]["phase"] == "Failed"


def test_a_trial_terminated_from_outside_is_requeued_and_resumes(tmp_path: Path) -> None:
    manifest = fake_sweep("requeue", [0.001], iterations=40)
    trial_dir = tmp_path / "requeue" / "trials" / "requeue-0"

    def terminate_once_it_trains() -> None:
        progress = trial_dir / "progress.jsonl"
        wait_until(
            lambda: progress.exists() and len(progress.read_text().splitlines()) >= 3,
            30,
            "three iterations",
            interval=0.02,
        )
        record = json.loads((trial_dir / "trial.json").read_text())
        os.kill(int(record["launches"][0]["ref"]), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_it_trains)
    killer.start()
    outcome = run_manifest(manifest, tmp_path)
    killer.join()
    assert outcome.code == 0, outcome.output
    record = outcome.record("requeue-0")
    assert [(launch.kind, launch.exit_code) for launch in record.launches] == [
        ("start", 75),
        ("resume", 0),
    ]
    lines = (trial_dir / "progress.jsonl").read_text().splitlines()
    iterations = [json.loads(line)["iteration"] for line in lines]
    assert iterations == list(range(1, 41))  # Resumed, not restarted.
    assert outcome.results()["trials"][0]["attempts"] == 1  # A requeue is no new attempt.


def test_asha_stops_the_bad_trial_early(tmp_path: Path) -> None:
    manifest = fake_sweep("asha", [0.00001, 0.003, 0.004, 0.005], iterations=30)
    manifest["spec"]["earlyStopping"] = {
        "type": "asha",
        "gracePeriod": 3,
        "reductionFactor": 2,
        "minTrials": 2,
    }
    outcome = run_manifest(manifest, tmp_path, cpus=4)
    assert outcome.code == 0, outcome.output
    trials = {t["name"]: t for t in outcome.results()["trials"]}
    assert trials["asha-0"]["phase"] == Phase.STOPPED.value
    assert trials["asha-0"]["iterations"] < 30
    assert outcome.record("asha-0").stop_requested
    assert trials["asha-3"]["phase"] == Phase.SUCCEEDED.value
    assert trials["asha-3"]["iterations"] == 30
    assert outcome.results()["best"] == "asha-3"


def test_a_second_run_of_a_finished_experiment_does_nothing(tmp_path: Path) -> None:
    manifest = (
        experiment("once")
        .stop(iterations=4)
        .set("spec.environment.config", {"seconds_per_iteration": 0.01})
        .obj()
    )
    first = run_manifest(manifest, tmp_path)
    assert first.code == 0, first.output
    result_mtime = (first.root / "result.json").stat().st_mtime_ns
    second = run_manifest(manifest, tmp_path)
    assert second.code == 0
    assert "already succeeded" in second.output
    assert (second.root / "result.json").stat().st_mtime_ns == result_mtime
    record = json.loads((second.root / "trial.json").read_text())
    assert len(record["launches"]) == 1


def test_a_sweep_needing_gpus_without_any_is_refused_before_it_starts(tmp_path: Path) -> None:
    manifest = fake_sweep("nogpu", [0.001])
    manifest["spec"]["template"]["resources"] = {"envRunners": 0, "gpusPerLearner": 1}
    with pytest.raises(PackingError, match="pass the devices to use with --gpus"):
        run_manifest(manifest, tmp_path, cpus=2)
    assert not (tmp_path / "nogpu" / "trials").exists()
