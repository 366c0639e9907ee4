"""The one backend protocol as the runner and the operator drive it: the local backend's
answers (no room now as `NoRoom` and a shorter `submit_many`, a batched observe that says
how each process ended and says it again, end = SIGTERM and a checkpoint, cancel by
reference alone = a kill, `check` for work that could never fit (a GPU on a machine
without), `Refused` without a run directory), and the KubeRay backend reading the RayJobs
the operator's watch holds through its `Watched` reader (a GET only where it may lag)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.api import Phase, RLExperiment
from rlops.api.experiment import BackendRef
from rlops.api.kinds import Kind
from rlops.api.settings import Settings
from rlops.backends.base import NoRoom, Refused, Submission, work_key
from rlops.backends.kuberay import KubeRayBackend, Seen
from rlops.backends.kuberay.client import RAYJOBS
from rlops.backends.local.executor import LocalBackend
from rlops.backends.packing import Slots
from tests.builders import experiment, rayjob
from tests.runner.helpers import FAKE_COMMAND
from tests.waiting import wait_until


def trial(root: Path, name: str, iterations: int = 3, gpus: float = 0) -> Submission:
    """A trial's spec.yaml in its run directory, as the runner writes it, submitted."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    body = experiment(name).stop(iterations=iterations).set("spec.resources.gpusPerLearner", gpus)
    body = body.obj()
    body["spec"]["environment"]["config"] = {"seconds_per_iteration": 0.05}
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(body))
    return Submission(RLExperiment.model_validate(body), 1, run_dir=run_dir)


@pytest.fixture
def local() -> Any:
    backend = LocalBackend(Slots(1), shlex.split(FAKE_COMMAND), close_grace_seconds=10)
    yield backend
    backend.close()


def ended(backend: LocalBackend, submission: Submission) -> Any:
    """Wait for the submission's process to end; its observation."""
    key = work_key(submission.experiment)

    def done() -> bool:
        seen = backend.observe([(submission.experiment, None)])[key]
        return seen is not None and seen.terminal

    wait_until(done, 30, f"{key} to end")
    return backend.observe([(submission.experiment, None)])[key]


def test_the_local_backend_has_no_room_until_a_process_ends(
    local: LocalBackend, tmp_path: Path
) -> None:
    first, second = trial(tmp_path, "a"), trial(tmp_path, "b")
    answers = local.submit_many([first, second])
    assert len(answers) == 1 and isinstance(answers[0], BackendRef) and answers[0].pid
    with pytest.raises(NoRoom):
        local.submit(second)
    assert local.submit(first) == answers[0]  # submitted twice, started once
    seen = local.observe([(first.experiment, answers[0]), (second.experiment, None)])
    assert seen[work_key(second.experiment)] is None  # no work
    work = ended(local, first)
    assert (work.phase, work.exit_code) == (Phase.SUCCEEDED, 0)
    again = local.observe([(first.experiment, answers[0])])  # the same answer, looked again
    assert again[work_key(first.experiment)] == work
    assert isinstance(local.submit(second), BackendRef)  # its CPU is free again


def test_end_checkpoints_and_cancel_by_reference_kills(local: LocalBackend, tmp_path: Path) -> None:
    long = trial(tmp_path, "long", iterations=100_000)
    ref = local.submit(long)
    progress = long.run_dir / "progress.jsonl" if long.run_dir else tmp_path
    wait_until(progress.exists, 30, "the trial to report an iteration")
    assert local.end(long.experiment, ref, "pause") == [str(ref.pid)]
    work = ended(local, long)
    assert (work.phase, work.exit_code) == (Phase.PAUSED, 75)  # checkpointed, "resume me"

    again = local.submit(Submission(long.experiment, 2, run_dir=long.run_dir))
    assert local.cancel(None, again) == [str(again.pid)]
    work = ended(local, long)
    assert (work.phase, work.exit_code) == (Phase.FAILED, -9)
    assert local.cancel(None, again) == []  # nothing left to end


def test_the_local_backend_refuses_what_it_cannot_run(local: LocalBackend, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="big"):
        local.check("big", trial(tmp_path, "big", gpus=1).experiment.spec.resources)
    with pytest.raises(Refused, match="run directory"):
        local.submit(Submission(RLExperiment.model_validate(experiment("x").obj())))


class CountingApi:
    """An ObjectApi that holds one RayJob and counts the reads."""

    def __init__(self, body: dict[str, Any] | None) -> None:
        self.body = body
        self.gets: list[str] = []

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> bool:
        return True

    def apply_secret(self, namespace: str, body: dict[str, Any]) -> None:
        return None

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        assert kind == RAYJOBS
        self.gets.append(f"{namespace}/{name}")
        return self.body

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        return None


def test_kuberay_observes_what_the_watch_holds_and_reads_only_what_it_may_lack() -> None:
    exp = RLExperiment.model_validate(experiment("cp", namespace="ns").obj())
    running = rayjob("Running", "RUNNING")
    watch: dict[str, Seen | None] = {}
    api = CountingApi(running)
    backend = KubeRayBackend(api, Settings(), lambda e: watch.get(work_key(e)))

    watch["ns/cp"] = Seen(running)
    seen = backend.observe([(exp, None)])["ns/cp"]
    assert seen is not None and seen.phase == Phase.RUNNING and api.gets == []
    watch["ns/cp"] = Seen(None)  # the watch knows it is gone
    assert backend.observe([(exp, None)]) == {"ns/cp": None} and api.gets == []
    del watch["ns/cp"]  # the watch may lag: one GET
    seen = backend.observe([(exp, None)])["ns/cp"]
    assert seen is not None and seen.phase == Phase.RUNNING and api.gets == ["ns/cp"]
