"""One bad experiment never stops the bridge's poll: a storage path it cannot create, a NaN
line in progress.jsonl, result.json or progress.jsonl being a directory, a FIFO named
progress.jsonl (which used to hang the bridge for ever), a foreign job met on delete. The
bad one ends Failed with the reason (or is skipped), the others are submitted and tracked.
Emulated: the Kubernetes store and SLURM are the in-memory fakes of tests/faults/fakes.py."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.fakes import FakeSlurm, MemoryStore, bridge, run_dir, slurm_experiment

GOOD = ("good-a", "good-b")


def poll_within(poll: Callable[[], object], seconds: float = 10.0) -> None:
    """Polls in a thread: a poll that hangs (a FIFO opened for reading) fails the test."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            poll()
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the poll hung"
    assert not errors, errors


def world(tmp_path: Path, bad: dict[str, object] | None = None) -> tuple[MemoryStore, FakeSlurm]:
    store, slurm = MemoryStore(), FakeSlurm()
    store.add(slurm_experiment("bad", **(bad or {})))
    for name in GOOD:
        store.add(slurm_experiment(name))
    return store, slurm


def assert_others_carry_on(store: MemoryStore) -> None:
    for name in GOOD:
        status = store.status(name)
        assert status.get("phase") in ("Pending", "Running"), (name, status)
        assert status["backendRef"]["jobId"]


def test_a_storage_path_the_bridge_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store, slurm = world(tmp_path, {"path": str(tmp_path / "file" / "runs")})
    b = bridge(store, slurm, tmp_path / "runs")
    poll_within(b.poll)
    assert store.status("bad")["phase"] == "Failed"
    assert "Not a directory" in store.status("bad")["message"]
    assert_others_carry_on(store)


def run_file_fault(tmp_path: Path, make: Callable[[Path], None]) -> MemoryStore:
    store, slurm = world(tmp_path)
    b = bridge(store, slurm, tmp_path / "runs")
    poll_within(b.poll)  # submitted, all of them
    make(run_dir(tmp_path / "runs", "bad"))
    poll_within(b.poll)
    poll_within(b.poll)
    assert_others_carry_on(store)
    return store


def test_a_nan_line_in_progress_is_skipped(tmp_path: Path) -> None:
    def nan_line(d: Path) -> None:
        good = {"iteration": 1, "timesteps": 5, "time_seconds": 1.0, "timestamp": 1.0}
        bad = json.dumps(good | {"iteration": 2}).replace("1.0,", "NaN,", 1)
        (d / "progress.jsonl").write_text(json.dumps(good) + "\n" + bad + "\n")

    store = run_file_fault(tmp_path, nan_line)
    status = store.status("bad")
    assert status["phase"] == "Running" and status["progress"]["iteration"] == 1


@pytest.mark.parametrize("name", ["result.json", "progress.jsonl"])
def test_a_run_file_that_is_a_directory_fails_that_experiment_alone(
    tmp_path: Path, name: str
) -> None:
    store = run_file_fault(tmp_path, lambda d: (d / name).mkdir())
    status = store.status("bad")
    assert status["phase"] == "Failed"
    assert f"{name} is a directory, not a regular file" in status["message"]


def test_a_fifo_named_progress_never_hangs_the_bridge(tmp_path: Path) -> None:
    store = run_file_fault(tmp_path, lambda d: os.mkfifo(d / "progress.jsonl"))
    status = store.status("bad")
    assert status["phase"] == "Failed" and "a FIFO, not a regular file" in status["message"]


def test_a_foreign_job_of_the_same_name_on_delete_stops_nothing(tmp_path: Path) -> None:
    store, slurm = world(tmp_path)
    b = bridge(store, slurm, tmp_path / "runs")
    poll_within(b.poll)
    bad = store.get("bad")
    foreign = slurm.add_foreign(slurm.table[bad["status"]["backendRef"]["jobId"]].name)
    bad["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    bad["status"]["backendRef"]["jobId"] = foreign  # a reference to a job not ours
    store.objects["team", "good-c"] = store.add(slurm_experiment("good-c"))
    poll_within(b.poll)
    assert store.status("good-c")["backendRef"]["jobId"]
    assert_others_carry_on(store)
