"""The shared Ray head of a local run (rlops.backends.local.rayhead), with a real Ray: a run that
ends in an error while a trial runs stops that trial (it checkpoints) and then the head,
leaving no Ray process; a killed runner's head stays up while a trial it started still
holds the run directory's lock, and ends once that trial has gone. The stand-in trainer
plays the trial (it records the address it was given); the head is real."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlops.api import RLExperiment
from rlops.backends.base import ExperimentBackend, Submission
from rlops.backends.local.executor import LocalBackend
from rlops.backends.local.rayhead import SharedHead, ray_processes
from rlops.backends.packing import Slots
from rlops.runner.layout import ExperimentLayout
from rlops.runner.session import HeldLock, RunnerSettings, RunOptions, open_run
from tests.builders import experiment
from tests.runner.helpers import FAKE_COMMAND
from tests.waiting import wait_until

pytestmark = pytest.mark.training  # Starts real Ray heads (15-25 s each on two cores).


def test_an_error_stops_the_running_trial_then_the_head(tmp_path: Path) -> None:
    manifest = experiment("err").stop(iterations=100_000).obj()
    layout = ExperimentLayout(tmp_path / "err")
    heads: list[SharedHead] = []

    def factory(lock: HeldLock) -> LocalBackend:
        heads.append(SharedHead(1, (), lock.path, layout.root / "ray-head.log"))
        return LocalBackend(Slots(1), FAKE_COMMAND.split(), inherit_fds=(lock.fd,), ray=heads[0])

    def train_then_break(backend: ExperimentBackend) -> None:
        layout.manifest.write_text(json.dumps(manifest))
        backend.submit(Submission(RLExperiment.model_validate(manifest), run_dir=layout.root))
        wait_until((layout.root / "progress.jsonl").exists, 120, "the trial to train")
        assert heads[0].temp_dir is not None and ray_processes(heads[0].temp_dir)
        temp_dirs.append(heads[0].temp_dir)
        raise RuntimeError("the loop broke")

    temp_dirs: list[Path] = []
    settings = RunnerSettings(lock_wait_seconds=5)
    opened = open_run(layout, manifest, RunOptions(tmp_path), settings, print, factory)
    with pytest.raises(RuntimeError, match="the loop broke"), opened as (_, backend):
        train_then_break(backend)
    result = json.loads((layout.root / "result.json").read_text())
    assert result["exit_code"] == 75  # SIGTERM first: it checkpointed and exited "resume me".
    given = json.loads((layout.root / "env-1.json").read_text())["ray_address"]
    assert given and given in (layout.root / "ray-head.log").read_text()
    assert not ray_processes(temp_dirs[0])
    assert not temp_dirs[0].exists()


RUNNER = """
import fcntl, os, subprocess, sys, time
from pathlib import Path
from rlops.backends.local.rayhead import SharedHead

lock = Path(sys.argv[1])
fd = os.open(lock, os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
head = SharedHead(1, (), lock, lock.parent / "ray-head.log")
head.cluster()
trial = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)"], pass_fds=(fd,), start_new_session=True
)
print(head.temp_dir, trial.pid, flush=True)
time.sleep(600)
"""


def test_a_killed_runners_head_waits_for_its_trials(tmp_path: Path) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(tmp_path / ".lock")], stdout=subprocess.PIPE, text=True
    )
    trial = 0
    try:
        assert runner.stdout is not None
        temp_dir, pid = runner.stdout.readline().split()
        trial = int(pid)
        runner.kill()  # No word to the head: it must wait for the trial holding the lock.
        runner.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert ray_processes(Path(temp_dir)), "the head ended while a trial still ran"
            time.sleep(0.5)
        os.kill(trial, signal.SIGKILL)
        wait_until(lambda: not ray_processes(Path(temp_dir)), 60, "the orphaned head to end")
    finally:
        runner.kill()
        if trial:
            with contextlib.suppress(ProcessLookupError):
                os.kill(trial, signal.SIGKILL)
