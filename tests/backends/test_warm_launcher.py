"""The warm trial launcher (rlops.backends.local.warm) behind the local executor: a forked
trial runs as its subprocess would (working directory, argv, sys.path, environment, log
with stdout and stderr, empty stdin, a session of its own); exit codes 0/1/75 and a kill
reach the executor; stop (SIGTERM) makes the stand-in trainer checkpoint and exit 75, and
SIGUSR1 reaches the trial; one trial's environment and module state do not reach the next;
a dead launcher's trials still end as their result.json says and later launches are
subprocesses, as they are when the launcher's children would share Ray's random IDs;
RLOPS_WARM_WORKERS=false (or a custom trial command) means no launcher. The
launcher here preloads little (the stand-ins need no RLlib); the last test forks a real
RLlib trial from a launcher with the default preload: SIGTERM makes it checkpoint and exit
75, and its next launch resumes from that checkpoint and succeeds."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from rlops.api import RLExperiment
from rlops.api.experiment import BackendRef
from rlops.api.runinfo import log_path
from rlops.backends.base import NoRoom, Observation, Submission, work_key
from rlops.backends.local.executor import LocalBackend
from rlops.backends.local.warm import WarmLauncher, WarmProcess
from rlops.backends.packing import Slots
from rlops.cli.run import warm_launcher
from rlops.runner.session import RunnerSettings
from tests.builders import experiment
from tests.runner.helpers import FAKE_TRAINER
from tests.waiting import wait_until

PROBE = Path(__file__).with_name("warm_probe.py")


@pytest.fixture
def launcher() -> Iterator[WarmLauncher]:
    warm = WarmLauncher(early=(), preload=("yaml",))
    yield warm
    warm.close()


def executor(launcher: WarmLauncher | None, script: Path, cpus: float = 2) -> LocalBackend:
    return LocalBackend(Slots(cpus), [sys.executable, str(script)], warm=launcher)


@dataclass(frozen=True)
class Request:
    """A launch of a trial whose spec.yaml (any text the probe reads) is in its run
    directory, as the runner submits it."""

    name: str
    run_dir: Path
    attempt: int = 1
    pause_at: int | None = None

    @property
    def spec(self) -> Path:
        return self.run_dir / "spec.yaml"

    @property
    def log(self) -> Path:
        return log_path(self.run_dir, self.attempt)

    @property
    def submission(self) -> Submission:
        model = RLExperiment.model_validate(experiment(self.name).obj())
        return Submission(model, self.attempt, run_dir=self.run_dir, pause_at=self.pause_at)


@dataclass(frozen=True)
class Handle:
    """A started launch: its submission and the backend's reference (`ref`: the pid)."""

    submission: Submission
    backend_ref: BackendRef

    @property
    def name(self) -> str:
        return self.submission.experiment.metadata.name

    @property
    def ref(self) -> str:
        return str(self.backend_ref.pid)


def request(
    tmp_path: Path, name: str, spec: str | dict[str, object], pause_at: int | None = None
) -> Request:
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "spec.yaml").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return Request(name, run_dir, pause_at=pause_at)


def start(local: LocalBackend, req: Request) -> Handle | None:
    submission = req.submission
    try:
        return Handle(submission, local.submit(submission))
    except NoRoom:
        return None


def stop(local: LocalBackend, handle: Handle) -> None:
    local.end(handle.submission.experiment, handle.backend_ref, "stop")


def kill(local: LocalBackend, handle: Handle) -> None:
    local.cancel(handle.submission.experiment, handle.backend_ref)


def finish(local: LocalBackend, handle: Handle) -> Observation:
    key = work_key(handle.submission.experiment)
    work = [(handle.submission.experiment, handle.backend_ref)]
    seen: dict[str, Observation] = {}

    def ended() -> bool:
        observation = local.observe(work)[key]
        if observation is not None and observation.terminal:
            seen[key] = observation
        return key in seen

    wait_until(ended, 240, f"{handle.name} to end")
    return seen[key]


def probed(req: Request) -> dict[str, object]:
    first = req.log.read_text().splitlines()[0]
    return dict(json.loads(first))


def test_a_forked_trial_runs_as_its_subprocess_would(
    tmp_path: Path, launcher: WarmLauncher
) -> None:
    local = executor(launcher, PROBE)
    req = request(tmp_path, "a", "exit 0")
    handle = start(local, req)
    assert handle is not None
    assert finish(local, handle).exit_code == 0
    seen = probed(req)
    assert seen["ppid"] == launcher.process.pid  # Forked by the launcher, not exec'd here.
    assert seen["pid"] == int(handle.ref) == seen["pgid"]  # Its own session and group.
    assert seen["cwd"] == str(req.run_dir)
    assert seen["argv"] == [str(PROBE), "--spec", str(req.spec.resolve()), "--run-dir",
                            str(req.run_dir.resolve()), "--attempt", "1"]  # fmt: skip
    assert seen["path0"] == str(PROBE.parent)
    assert seen["stdin"] == ""
    env = seen["env"]
    assert isinstance(env, dict)
    assert env["RLOPS_TRIAL_CPUS"] == "1" and env["OMP_NUM_THREADS"] == "1"
    assert req.log.read_text().splitlines()[1:] == ["stderr line"]


@pytest.mark.parametrize("code", [0, 1, 75, 3])
def test_exit_codes_reach_the_executor(tmp_path: Path, launcher: WarmLauncher, code: int) -> None:
    local = executor(launcher, PROBE)
    handle = start(local, request(tmp_path, "t", f"exit {code}"))
    assert handle is not None
    assert finish(local, handle).exit_code == code


def test_stop_checkpoints_and_kill_kills(tmp_path: Path, launcher: WarmLauncher) -> None:
    local = executor(launcher, FAKE_TRAINER)
    slow = experiment("s").stop(iterations=10_000).obj()
    slow["spec"]["environment"]["config"] = {"seconds_per_iteration": 0.05}
    stopped = start(local, request(tmp_path, "stopped", slow))
    killed = start(local, request(tmp_path, "killed", slow))
    assert stopped is not None and killed is not None
    for name in ("stopped", "killed"):
        wait_until((tmp_path / name / "progress.jsonl").exists, 30, f"{name} to train")
    stop(local, stopped)
    kill(local, killed)
    assert finish(local, stopped).exit_code == 75
    result = json.loads((tmp_path / "stopped" / "result.json").read_text())
    assert result["status"] == "requeue" and result["iteration"] >= 1
    assert finish(local, killed).exit_code == -signal.SIGKILL


def test_sigusr1_reaches_the_trial(tmp_path: Path, launcher: WarmLauncher) -> None:
    local = executor(launcher, PROBE)
    req = request(tmp_path, "u", "wait")
    handle = start(local, req)
    assert handle is not None
    wait_until(lambda: req.log.exists() and req.log.read_text(), 30, "the probe to start")
    os.kill(int(handle.ref), signal.SIGUSR1)
    assert finish(local, handle).exit_code == 75
    assert f"signal {int(signal.SIGUSR1)}" in req.log.read_text()


def test_one_trial_does_not_reach_the_next(tmp_path: Path, launcher: WarmLauncher) -> None:
    local = executor(launcher, PROBE, cpus=1)
    first = request(tmp_path, "first", "exit 0", pause_at=3)
    handle = start(local, first)
    assert handle is not None
    finish(local, handle)
    second = request(tmp_path, "second", "exit 0")
    handle = start(local, second)
    assert handle is not None
    finish(local, handle)
    assert probed(first)["env"] == {"RLOPS_TRIAL_CPUS": "1", "RLOPS_PAUSE_AT_ITERATION": "3",
                                    "PROBE_LEAK": None, "OMP_NUM_THREADS": "1"}  # fmt: skip
    assert probed(second)["env"] == {"RLOPS_TRIAL_CPUS": "1", "RLOPS_PAUSE_AT_ITERATION": None,
                                     "PROBE_LEAK": None, "OMP_NUM_THREADS": "1"}  # fmt: skip
    assert probed(first)["mark"] == probed(second)["mark"] == "unset"
    assert probed(first)["pid"] != probed(second)["pid"]


def test_a_dead_launcher_s_trials_end_as_their_result_says(
    tmp_path: Path, launcher: WarmLauncher
) -> None:
    local = executor(launcher, FAKE_TRAINER)
    slow = experiment("s").stop(iterations=10_000).obj()
    handle = start(local, request(tmp_path, "orphan", slow))
    assert handle is not None
    wait_until((tmp_path / "orphan" / "progress.jsonl").exists, 30, "the trial to train")
    launcher.process.kill()  # Its children get SIGTERM (they die with it): checkpoint, 75.
    observation = finish(local, handle)
    assert observation.exit_code == -signal.SIGTERM and observation.phase.value == "Paused"
    assert launcher.lost
    probe = executor(launcher, PROBE)
    req = request(tmp_path, "after", "exit 0")
    later = start(probe, req)
    assert later is not None
    assert not isinstance(probe._processes[work_key(req.submission.experiment)].popen, WarmProcess)
    assert finish(probe, later).exit_code == 0
    assert probed(req)["ppid"] == os.getpid()


def test_a_launcher_whose_children_would_share_ray_ids_is_not_used(tmp_path: Path) -> None:
    # Importing Ray Data draws from Ray's random ID generator: children forked after it
    # would draw the same IDs, so the launcher refuses and launches start cold.
    warm = WarmLauncher(early=(), preload=("ray", "ray.data"))
    try:
        local = executor(warm, PROBE)
        req = request(tmp_path, "shared", "exit 0")
        handle = start(local, req)
        assert handle is not None
        assert warm.lost
        assert finish(local, handle).exit_code == 0
        assert probed(req)["ppid"] == os.getpid()
    finally:
        warm.close()


def test_no_launcher_when_turned_off_or_for_a_custom_command(tmp_path: Path) -> None:
    assert warm_launcher(RunnerSettings(warm_workers=False), 0) is None
    assert warm_launcher(RunnerSettings(trial_command="python train.py"), 0) is None
    local = executor(None, PROBE)
    req = request(tmp_path, "cold", "exit 0")
    handle = start(local, req)
    assert handle is not None
    assert finish(local, handle).exit_code == 0
    assert probed(req)["ppid"] == os.getpid()


def real_manifest(iterations: int) -> dict[str, object]:
    return (
        experiment("real").algorithm("PPO").env("CartPole-v1").stop(iterations=iterations)
        .config("training", train_batch_size_per_learner=200, minibatch_size=100, num_epochs=1)
        .set("spec.resources", {"envRunners": 0}).obj()
    )  # fmt: skip


@pytest.mark.training
def test_a_real_rllib_trial_forked_warm_checkpoints_on_stop_and_resumes(tmp_path: Path) -> None:
    warm = WarmLauncher()
    try:
        local = LocalBackend(Slots(2), warm=warm)
        req = request(tmp_path, "real", real_manifest(10_000))
        handle = start(local, req)
        assert handle is not None
        stat = Path(f"/proc/{handle.ref}/stat").read_text().split()
        assert int(stat[3]) == warm.process.pid  # Forked by the launcher.
        progress = req.run_dir / "progress.jsonl"
        wait_until(lambda: progress.exists() and progress.read_text().strip(), 240, "an iteration")
        stop(local, handle)
        assert finish(local, handle).exit_code == 75, req.log.read_text()[-3000:]
        stopped = json.loads((req.run_dir / "result.json").read_text())
        assert stopped["status"] == "requeue" and stopped["last_checkpoint"]
        assert (req.run_dir / stopped["last_checkpoint"]).is_dir()
        req.spec.write_text(json.dumps(real_manifest(stopped["iteration"] + 1)))
        resumed = replace(req, attempt=2)
        handle = start(local, resumed)
        assert handle is not None
        assert finish(local, handle).exit_code == 0, resumed.log.read_text()[-3000:]
        result = json.loads((req.run_dir / "result.json").read_text())
        assert result["status"] == "succeeded"
        assert result["iteration"] == stopped["iteration"] + 1  # Went on from the checkpoint.
    finally:
        warm.close()
