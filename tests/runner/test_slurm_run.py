"""`rlops run --backend slurm` on a real single-node SLURM cluster (munged, slurmctld, slurmd
started here): a four-trial sweep, each trial running the real runtime with a tiny CartPole
budget, goes to SLURM as ONE job array (sbatch counted through the client's observer), and a
second run adopts nothing and re-runs nothing; a runner killed while the array runs is
replaced by one that adopts the tasks (fake runtime, no second sbatch); --no-slurm-array
submits one job per trial; a paused trial's job is cancelled (it checkpoints) and its
resume is a new job in the same run directory (fake runtime). Also how finished jobs ended
(the outcome the runner records), and the phases they give with a stop or a pause (pure)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from rlops.api import Phase, Sweep
from rlops.backends.slurm import CliSlurmClient, SlurmBackend, SlurmSettings
from rlops.backends.slurm.runs import JOB_RECORD, SlurmRunBackend, ended_job, run_uid
from rlops.runner.display import PlainDisplay
from rlops.runner.fleet import Fleet
from rlops.runner.layout import Launch, SweepLayout, TrialRecord, read_record
from rlops.runner.session import HeldLock, RunnerSettings, RunOptions
from rlops.runner.state import trial_phase
from rlops.runner.sweep_run import SweepRun
from rlops.sweep.trials import TrialState
from tests.builders import experiment, sweep
from tests.slurm.fake_runtime import fake_python
from tests.slurm.slurm_cluster import SlurmCluster, missing_binaries, running_cluster
from tests.waiting import wait_until

RLOPS = str(Path(sys.executable).with_name("rlops"))


S, P, F = Phase.SUCCEEDED, Phase.PAUSED, Phase.FAILED


@pytest.mark.parametrize(
    ("phase", "result_code", "stopped", "outcome"),
    [
        (Phase.SUCCEEDED, 0, False, S),
        (Phase.FAILED, 2, False, F),
        (Phase.FAILED, None, False, F),
        (Phase.STOPPED, 75, True, P),  # We cancelled it: it checkpointed.
        (Phase.FAILED, 75, True, P),  # We signalled it: it checkpointed and exited 75.
        (Phase.FAILED, None, True, P),  # Killed after the stop's grace period.
        (Phase.FAILED, 1, True, F),  # Training failed while it was being stopped.
        (Phase.FAILED, 75, False, F),  # Exit 75 that nobody asked for.
        (Phase.STOPPED, None, True, P),  # An array task cancelled while it was queued.
        (Phase.STOPPED, 0, True, S),  # It reached its budget before the cancel.
        (Phase.STOPPED, None, False, F),  # Cancelled by someone else.
    ],
)
def test_how_finished_jobs_ended(
    phase: Phase, result_code: int | None, stopped: bool, outcome: Phase
) -> None:
    ended = ended_job(phase, result_code, stopped)
    assert (ended.phase, ended.terminal, ended.exit_code) == (outcome, True, result_code)


def test_a_job_that_reached_its_pause_point_ended_at_a_checkpoint_by_itself() -> None:
    assert ended_job(Phase.FAILED, 75, stopped=False, paused_itself=True).phase is Phase.PAUSED
    assert ended_job(Phase.SUCCEEDED, 0, stopped=False, paused_itself=True).phase is S


@pytest.mark.parametrize(
    ("stop", "pause", "result_code", "phase"),
    [
        (False, True, 75, Phase.PAUSED),
        (False, True, None, Phase.PAUSED),
        (False, True, 0, Phase.SUCCEEDED),
        (True, False, 75, Phase.STOPPED),
        (True, True, 75, Phase.STOPPED),
    ],
)
def test_a_job_we_cancelled_is_stopped_or_paused_as_its_record_says(
    stop: bool, pause: bool, result_code: int | None, phase: Phase
) -> None:
    ended = ended_job(Phase.STOPPED, result_code, stopped=True)
    launch = Launch(attempt=1, kind="start", started_at=0.0, outcome=ended.phase.value)
    record = TrialRecord(name="t", launches=[launch], stop_requested=stop, pause_requested=pause)
    assert trial_phase(record, None, running=False) == phase


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


def run_in_process(
    manifest: dict[str, Any], root: Path, cluster: SlurmCluster, arrays: bool = True
) -> tuple[int, list[str]]:
    """`rlops run --backend slurm` in this process; returns its exit code and every SLURM
    command it ran (the client's observer)."""
    commands: list[str] = []
    settings = SlurmSettings(python=sys.executable)
    client = CliSlurmClient(settings, env=cluster.env, observer=lambda c, s, ok: commands.append(c))

    def factory(lock: HeldLock) -> SlurmRunBackend:
        return SlurmRunBackend(SlurmBackend(client, settings), arrays=arrays)

    display = PlainDisplay(console=Console(file=io.StringIO(), width=200, no_color=True))
    runner = RunnerSettings(poll_seconds=0.3, lock_wait_seconds=60)
    run = SweepRun(Sweep.model_validate(manifest), manifest, RunOptions(root=root, report=False),
                   runner, display, factory)  # fmt: skip
    return run.run(), commands


def lr_sweep(name: str, count: int, python: str, stop: dict[str, Any], **config: Any) -> Any:
    """`count` trials over lr 1e-3 and below (PPO learns at each), one CPU each."""
    return (
        sweep(name)
        .template("stop", stop)
        .param("config.training.lr", "grid", values=[10.0 ** -(3 + k / 2) for k in range(count)])
        .set("spec.parallelism", count)
        .set("spec.placement", {"slurm": {"cluster": "hpc", "python": python}})
        .set("spec.template.environment.config", config)
    )


@pytest.mark.slurm
@pytest.mark.training
def test_a_sweep_runs_as_one_slurm_job_array(cluster: SlurmCluster, tmp_path: Path) -> None:
    manifest = (
        lr_sweep("onslurm", 4, sys.executable, {"timesteps": 1000})
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
        .obj()
    )
    root = Path(os.path.realpath(tmp_path)) / "runs"
    code, commands = run_in_process(manifest, root, cluster)
    assert code == 0
    assert commands.count("sbatch") == 1  # Four trials, one array job.

    layout = SweepLayout(root / "onslurm")
    results = json.loads(layout.results.read_text())
    assert [t["phase"] for t in results["trials"]] == ["Succeeded"] * 4
    arrays = set()
    for i in range(4):
        run_dir = layout.trial(f"onslurm-{i}")
        record = json.loads((run_dir / "trial.json").read_text())
        assert record["backend"] == "slurm"
        (job,) = [launch["ref"] for launch in record["launches"]]
        array, _, task = job.partition("_")
        arrays.add(array)
        assert task == str(i)
        # Task i trained trial i, in the trial's directory.
        assert f"trains onslurm-{i}" in (run_dir / f"slurm-{job}.out").read_text()
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "succeeded" and result["timesteps"] >= 1000
    assert len(arrays) == 1
    assert len(results["leaderboard"]) == 4

    mtimes = {n: (layout.trial(n) / "result.json").stat().st_mtime_ns for n in layout.trial_names()}
    env = {**cluster.env, "RLOPS_SLURM_PYTHON": sys.executable, "RLOPS_POLL_SECONDS": "0.5"}
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(manifest))
    command = [RLOPS, "run", str(file), "--root", str(root), "--backend", "slurm", "-q"]
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    for name, mtime in mtimes.items():
        assert (layout.trial(name) / "result.json").stat().st_mtime_ns == mtime


@pytest.mark.slurm
def test_a_new_runner_adopts_the_array_of_a_killed_one(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    python = str(fake_python(tmp_path))
    manifest = lr_sweep("adopt", 4, python, {"iterations": 16}, seconds_per_iteration=0.4).obj()
    file = tmp_path / "sweep.yaml"
    file.write_text(yaml.safe_dump(manifest))
    root = Path(os.path.realpath(tmp_path)) / "runs"
    layout = SweepLayout(root / "adopt")
    env = {**cluster.env, "RLOPS_POLL_SECONDS": "0.3"}
    command = [RLOPS, "run", str(file), "--root", str(root), "--backend", "slurm", "-q"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(
            lambda: all((layout.trial(f"adopt-{i}") / "trial.json").exists()
                        and read_record(layout.trial(f"adopt-{i}")).launches  # type: ignore[union-attr]
                        for i in range(4)),
            60, "the first runner to record the launches of its four trials",
        )  # fmt: skip
        wait_until(lambda: (layout.trial("adopt-0") / "progress.jsonl").exists(), 60, "training")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    jobs = {i: read_record(layout.trial(f"adopt-{i}")).launches[-1].ref for i in range(4)}  # type: ignore[union-attr]
    assert len({job.partition("_")[0] for job in jobs.values()}) == 1

    code, commands = run_in_process(manifest, root, cluster)
    assert code == 0
    assert commands.count("sbatch") == 0  # The tasks were adopted, not submitted again.
    results = json.loads(layout.results.read_text())
    assert [t["phase"] for t in results["trials"]] == ["Succeeded"] * 4
    for i, job in jobs.items():
        run_dir = layout.trial(f"adopt-{i}")
        record = read_record(run_dir)
        assert record is not None and [x.ref for x in record.launches] == [job, job]
        assert json.loads((run_dir / JOB_RECORD).read_text())["jobId"] == job
        progress = (run_dir / "progress.jsonl").read_text().splitlines()
        assert [json.loads(line)["iteration"] for line in progress] == list(range(1, 17))


@pytest.mark.slurm
def test_no_slurm_array_submits_one_job_per_trial(cluster: SlurmCluster, tmp_path: Path) -> None:
    python = str(fake_python(tmp_path))
    manifest = lr_sweep("single", 3, python, {"iterations": 3}).obj()
    root = Path(os.path.realpath(tmp_path)) / "runs"
    code, commands = run_in_process(manifest, root, cluster, arrays=False)
    assert code == 0
    assert commands.count("sbatch") == 3
    for i in range(3):
        record = read_record(SweepLayout(root / "single").trial(f"single-{i}"))
        assert record is not None and record.launches[-1].ref.isdigit()


@pytest.mark.slurm
def test_a_paused_trial_is_cancelled_and_resumed_as_a_new_job(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    python = str(fake_python(tmp_path))
    manifest = (
        experiment("paused")
        .slurm(python=python)
        .set("spec.environment.config", {"seconds_per_iteration": 0.3})
        .stop(iterations=12)
        .obj()
    )
    commands: list[str] = []
    settings = SlurmSettings(python=sys.executable)
    client = CliSlurmClient(settings, env=cluster.env, observer=lambda c, s, ok: commands.append(c))
    fleet = Fleet(SlurmRunBackend(SlurmBackend(client, settings)), "episode_return_mean")
    run_dir = Path(os.path.realpath(tmp_path)) / "paused"
    trial = fleet.create(run_dir, TrialRecord(name="paused", backend="slurm"), manifest)

    def phase() -> Phase:
        fleet.refresh()
        return fleet.state("paused").phase

    def iterations() -> list[int]:
        return [p.iteration for p in trial.progress.records]

    assert fleet.launch_pending() == ["paused"]
    wait_until(lambda: phase() == Phase.RUNNING and len(iterations()) >= 2, 60, "2 iterations")
    fleet.pause("paused")
    wait_until(lambda: phase() != Phase.RUNNING, 60, "the cancelled job to end")
    assert fleet.state("paused").phase == Phase.PAUSED
    assert trial.result is not None and trial.result.exit_code == 75
    paused_at = iterations()[-1]
    assert paused_at < 12
    assert fleet.launch_pending() == []

    fleet.resume("paused")
    assert fleet.launch_pending() == ["paused"]
    wait_until(lambda: phase().finished, 60, "the resumed job to finish")
    state = fleet.state("paused")
    assert (state.phase, state.attempts, state.promotions) == (Phase.SUCCEEDED, 1, 1)
    assert iterations() == list(range(1, 13))
    first, second = trial.record.launches
    assert (first.exit_code, second.kind, second.exit_code) == (75, "resume", 0)
    assert first.ref != second.ref
    assert (commands.count("sbatch"), commands.count("scancel")) == (2, 1)
    assert json.loads((run_dir / JOB_RECORD).read_text())["jobId"] == second.ref


@pytest.mark.slurm
def test_trials_pause_themselves_at_their_rungs_in_one_array_and_resume(
    cluster: SlurmCluster, tmp_path: Path
) -> None:
    """ASHA's promotion variant under SLURM: each launch carries its trial's rung in the
    array's per-task table, and the runtime pauses there by itself (no scancel, no
    iteration past the rung); a resume without a pause point trains to the budget."""
    python = str(fake_python(tmp_path))
    manifest = experiment("rung").slurm(python=python).stop(iterations=12).obj()
    commands: list[str] = []
    settings = SlurmSettings(python=sys.executable)
    client = CliSlurmClient(settings, env=cluster.env, observer=lambda c, s, ok: commands.append(c))
    rungs = {"a": 3, "b": 5}

    def pause_point(state: TrialState) -> int | None:
        return rungs[state.name] if state.promotions == 0 else None

    executor = SlurmRunBackend(SlurmBackend(client, settings), arrays=True)
    fleet = Fleet(executor, "episode_return_mean", parallelism=2, pause_point=pause_point)
    root = Path(os.path.realpath(tmp_path))
    trials = {
        name: fleet.create(root / name, TrialRecord(name=name, backend="slurm"), manifest)
        for name in rungs
    }

    def phases() -> dict[str, Phase]:
        fleet.refresh()
        return {name: fleet.state(name).phase for name in trials}

    def iterations(name: str) -> list[int]:
        return [p.iteration for p in trials[name].progress.records]

    assert fleet.launch_pending() == ["a", "b"]
    assert commands.count("sbatch") == 1  # one array, a pause point per task
    (script,) = (root / ".slurm-arrays").glob("*/array.sh")
    assert "PAUSE_ATS=(3 5)" in script.read_text()
    wait_until(lambda: set(phases().values()) == {Phase.PAUSED}, 60, "both trials to pause")
    assert (iterations("a"), iterations("b")) == ([1, 2, 3], [1, 2, 3, 4, 5])
    for name in trials:
        result = trials[name].result
        assert result is not None and (result.exit_code, result.stop_reason) == (75, "paused")
        assert trials[name].record.launches[0].exit_code == 75
    assert "scancel" not in commands

    assert fleet.resume("a") and fleet.launch_pending() == ["a"]
    wait_until(lambda: phases()["a"].finished, 60, "the promoted trial to finish")
    state = fleet.state("a")
    assert (state.phase, state.attempts, state.promotions) == (Phase.SUCCEEDED, 1, 1)
    assert iterations("a") == list(range(1, 13))
    assert fleet.state("b").phase == Phase.PAUSED and iterations("b") == [1, 2, 3, 4, 5]
    assert "scancel" not in commands
