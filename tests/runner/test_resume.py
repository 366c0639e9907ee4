"""Resuming from the run directory: a trial's phase and attempts read back from its record
and result.json, reopening a directory (same manifest resumes, a changed one is refused
unless --force or --new), and a runner killed mid-sweep whose successor finishes the sweep
without re-running finished trials (the stand-in trainer; the real one in test_e2e_*)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from rlops.api import Phase
from rlops.api.runinfo import RunResult
from rlops.runner.layout import Launch, SweepLayout, TrialRecord
from rlops.runner.rundir import RunDirConflict, prepare
from rlops.runner.state import attempts, trial_phase
from tests.builders import sweep
from tests.runner.helpers import FAKE_COMMAND, run_manifest
from tests.waiting import wait_until


def launch(attempt: int, kind: str = "start", code: int | None = None) -> Launch:
    return Launch(attempt=attempt, kind=kind, started_at=0.0, exit_code=code)


def result(attempt: int, code: int) -> RunResult:
    return RunResult(status="x", exit_code=code, attempt=attempt)


@pytest.mark.parametrize(
    ("launches", "run_result", "stop_requested", "phase"),
    [
        ([], None, False, Phase.PENDING),
        ([], None, True, Phase.STOPPED),  # Stopped before it ever ran.
        ([launch(1, code=0)], None, False, Phase.SUCCEEDED),
        ([launch(1, code=1)], None, False, Phase.FAILED),
        ([launch(1, code=2)], None, False, Phase.FAILED),
        ([launch(1, code=75)], None, False, Phase.PENDING),  # Requeue: run it again.
        ([launch(1, code=75)], None, True, Phase.STOPPED),  # Early-stopped.
        # The runner died before it saw the exit: result.json of that attempt tells.
        ([launch(1)], result(1, 0), False, Phase.SUCCEEDED),
        ([launch(1)], result(1, 1), False, Phase.FAILED),
        ([launch(1)], result(1, 75), False, Phase.PENDING),
        # Killed by a signal after its result was written: the result stands.
        ([launch(1, code=-15)], result(1, 0), False, Phase.SUCCEEDED),
        ([launch(1, code=-15)], result(1, 75), False, Phase.PENDING),
        ([launch(2, code=-9)], result(1, 0), False, Phase.FAILED),
        # Killed by a second Ctrl-C: resumable, not failed.
        ([launch(1, code=-9).model_copy(update={"interrupted": True})], None, False, Phase.PENDING),
        # ...but not the result of an older attempt: the latest one was interrupted.
        ([launch(1, code=1), launch(2, "retry")], result(1, 1), False, Phase.PENDING),
    ],
)
def test_phase_is_read_back_from_the_files(
    launches: list[Launch], run_result: RunResult | None, stop_requested: bool, phase: Phase
) -> None:
    record = TrialRecord(name="t", launches=launches, stop_requested=stop_requested)
    assert trial_phase(record, run_result, running=False) == phase


def test_a_running_process_and_a_pending_retry_decide_first() -> None:
    failed = TrialRecord(name="t", launches=[launch(1, code=1)])
    assert trial_phase(failed, None, running=True) == Phase.RUNNING
    failed.retry_pending = True
    assert trial_phase(failed, None, running=False) == Phase.PENDING


def test_requeues_continue_an_attempt_and_retries_start_one() -> None:
    launches = [
        launch(1, code=75),
        launch(2, "resume", 1),
        launch(3, "retry", 75),
        launch(4, "resume", 0),
    ]
    assert attempts(launches) == 2


def test_reopening_the_same_manifest_resumes(tmp_path: Path) -> None:
    manifest = sweep("s").param("seed", "grid", values=[1, 2]).obj()
    layout = SweepLayout(tmp_path / "s")
    assert not prepare(layout.root, layout.manifest, manifest, False, False, print).resumed
    layout.root.mkdir()
    layout.manifest.write_text(yaml.safe_dump(manifest))
    reopened = prepare(layout.root, layout.manifest, manifest, False, False, print)
    assert reopened.resumed and not reopened.changed
    # Spelling out a default, or changing parallelism, is no change of the search.
    same = sweep("s").param("seed", "grid", values=[1, 2]).set("spec.maxAttempts", 1).obj()
    same["spec"]["parallelism"] = 4
    assert not prepare(layout.root, layout.manifest, same, False, False, print).changed


def test_a_changed_manifest_is_refused_with_the_changes(tmp_path: Path) -> None:
    layout = SweepLayout(tmp_path / "s")
    layout.root.mkdir()
    layout.manifest.write_text(yaml.safe_dump(sweep("s").param("seed", "grid", values=[1]).obj()))
    changed = sweep("s").param("seed", "grid", values=[1, 2]).obj()
    with pytest.raises(RunDirConflict, match=r"spec.parameters.seed.values: \[1\] -> \[1, 2\]"):
        prepare(layout.root, layout.manifest, changed, False, False, print)
    forced = prepare(layout.root, layout.manifest, changed, True, False, print)
    assert forced.resumed and forced.changed
    fresh = prepare(layout.root, layout.manifest, changed, False, True, print)
    assert not fresh.resumed
    assert not layout.root.exists()
    assert [p.name.startswith("s.") for p in tmp_path.iterdir()] == [True]


def test_a_changed_sweep_is_refused_by_rlops_run(tmp_path: Path) -> None:
    manifest = sweep("s").template("stop", {"iterations": 2}).obj()
    assert run_manifest(manifest, tmp_path).code == 0
    manifest["spec"]["template"]["stop"]["iterations"] = 3
    with pytest.raises(RunDirConflict, match=r"spec\.template\.stop\.iterations: 2 -> 3"):
        run_manifest(manifest, tmp_path)


def test_a_killed_runner_is_resumed_without_rerunning_finished_trials(tmp_path: Path) -> None:
    manifest = (
        sweep("resume")
        .template("stop", {"iterations": 30})
        .template("environment.config", {"seconds_per_iteration": 0.05})
        .param("config.training.lr", "grid", values=[0.001, 0.002, 0.003, 0.004])
        .set("spec.parallelism", 2)
        .obj()
    )
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(manifest))
    root = tmp_path / "runs"
    command = [
        str(Path(sys.executable).with_name("rlops")),
        "run",
        str(file),
        "--root",
        str(root),
        "-q",
        "--cpus",
        "2",
        "--no-report",
        "--isolated-ray",  # The stand-in trainer uses no Ray.
    ]
    env = {**os.environ, "RLOPS_TRIAL_COMMAND": FAKE_COMMAND, "RLOPS_POLL_SECONDS": "0.05"}
    layout = SweepLayout(root / "resume")

    def succeeded() -> list[str]:
        return [
            n
            for n in layout.trial_names()
            if (layout.trial(n) / "result.json").exists()
            and json.loads((layout.trial(n) / "result.json").read_text())["exit_code"] == 0
        ]

    def training() -> list[str]:
        return [
            n
            for n in layout.trial_names()
            if n not in succeeded()
            and (progress := layout.trial(n) / "progress.jsonl").exists()
            and len(progress.read_text().splitlines()) >= 3
        ]

    runner = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    wait_until(lambda: len(succeeded()) >= 2 and training(), 60, "two finished, one training")
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    finished = {n: (layout.trial(n) / "result.json").stat().st_mtime_ns for n in succeeded()}
    assert len(finished) < 4

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming" in second.stdout
    results = json.loads(layout.results.read_text())
    assert [t["phase"] for t in results["trials"]] == ["Succeeded"] * 4
    for name, mtime in finished.items():
        assert (layout.trial(name) / "result.json").stat().st_mtime_ns == mtime
        record = json.loads((layout.trial(name) / "trial.json").read_text())
        assert len(record["launches"]) == 1
    resumed = [
        n
        for n in layout.trial_names()
        if [
            launch["kind"]
            for launch in json.loads((layout.trial(n) / "trial.json").read_text())["launches"]
        ]
        == ["start", "resume"]
    ]
    assert resumed, "a trial cut off by the kill resumes from where it was"
    for trial in results["trials"]:
        progress = (layout.trial(trial["name"]) / "progress.jsonl").read_text().splitlines()
        assert [json.loads(line)["iteration"] for line in progress] == list(range(1, 31))


@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_leaves_the_sweep_resumable(tmp_path: Path, presses: int) -> None:
    manifest = (
        sweep("ctrlc")
        .template("stop", {"iterations": 60})
        .template("environment.config", {"seconds_per_iteration": 0.05})
        .param("config.training.lr", "grid", values=[0.001, 0.002])
        .set("spec.parallelism", 2)
        .obj()
    )
    layout = SweepLayout(tmp_path / "ctrlc")

    def press_when_training() -> None:
        progress = layout.trial("ctrlc-1") / "progress.jsonl"
        wait_until(
            lambda: progress.exists() and len(progress.read_text().splitlines()) >= 3,
            30,
            "training",
        )
        for _ in range(presses):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)

    presser = threading.Thread(target=press_when_training)
    presser.start()
    first = run_manifest(manifest, tmp_path)
    presser.join()
    assert first.code == 130, first.output
    for name in ("ctrlc-0", "ctrlc-1"):
        (launch,) = first.record(name).launches
        assert launch.interrupted and launch.exit_code != 0
    second = run_manifest(manifest, tmp_path)
    assert second.code == 0, second.output
    for name in ("ctrlc-0", "ctrlc-1"):
        assert [x.kind for x in second.record(name).launches] == ["start", "resume"]
