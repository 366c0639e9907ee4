"""Run files that lie: the progress reader over a truncated, rotated or regressing
progress.jsonl and a line that never ends; result.json torn, empty or a directory; a local
run resumed over a torn or empty trial.json or result.json (the trial is reported, the run
goes on); a FIFO progress.jsonl in a local trial (Failed with the reason, never a hang)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlops.api.runinfo import (
    MAX_LINE_BYTES,
    PROGRESS_FILE,
    RESULT_FILE,
    ProgressReader,
    ProgressTail,
    RunFileError,
    read_result,
)
from tests.builders import sweep
from tests.runner.helpers import run_manifest


def line(iteration: int, attempt: int = 1) -> str:
    record = {"iteration": iteration, "timesteps": iteration, "time_seconds": 1.0,
              "timestamp": 1.0, "attempt": attempt}  # fmt: skip
    return json.dumps(record) + "\n"


def test_truncation_and_rotation_are_read_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / PROGRESS_FILE
    path.write_text(line(1) + line(2) + line(3))
    reader = ProgressReader(path)
    assert [r.iteration for r in reader.read_new()] == [1, 2, 3]
    path.write_text(line(4))  # truncated (shorter than the offset), then written again
    assert [r.iteration for r in reader.read_new()] == [4]
    rotated = tmp_path / "new"
    rotated.write_text(line(5) + line(6) + line(7) + line(8) + line(9))
    os.replace(rotated, path)  # a new file of any length
    assert [r.iteration for r in reader.read_new()] == [5, 6, 7, 8, 9]


def test_an_older_line_never_moves_progress_backwards(tmp_path: Path) -> None:
    path = tmp_path / PROGRESS_FILE
    path.write_text(line(5) + line(3))
    tail = ProgressTail(path)
    latest = tail.read()
    assert latest is not None and latest.iteration == 5
    runner = ProgressTail(path, keep=True)
    runner.refresh()
    assert runner.last is not None and runner.last.iteration == 5
    with path.open("a") as f:
        f.write(line(2, attempt=2))  # a new attempt resumed from an earlier checkpoint
    latest = tail.read()
    assert latest is not None and (latest.attempt, latest.iteration) == (2, 2)


def test_a_line_that_never_ends_is_skipped_not_reread(tmp_path: Path) -> None:
    path = tmp_path / PROGRESS_FILE
    path.write_text(line(1))
    reader = ProgressReader(path)
    assert [r.iteration for r in reader.read_new()] == [1]
    with path.open("a") as f:
        f.write("x" * (2 * MAX_LINE_BYTES))
    assert reader.read_new() == []
    offset = reader.offset
    assert offset > 2 * MAX_LINE_BYTES - 1  # past the garbage, not re-read next time
    with path.open("a") as f:
        f.write("tail of it\n" + line(2))
    assert [r.iteration for r in reader.read_new()] == [2]


@pytest.mark.parametrize("text", ["", '{"status": "succ', "[]"])
def test_a_torn_or_empty_result_is_no_result(tmp_path: Path, text: str) -> None:
    (tmp_path / RESULT_FILE).write_text(text)
    assert read_result(tmp_path) is None


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / RESULT_FILE)
    with pytest.raises(RunFileError, match="a FIFO"):
        read_result(tmp_path)
    (tmp_path / PROGRESS_FILE).mkdir()
    with pytest.raises(RunFileError, match="a directory"):
        ProgressReader(tmp_path / PROGRESS_FILE).read_new()


def quick_sweep() -> dict[str, object]:
    return (
        sweep("torn")
        .template("stop", {"iterations": 2})
        .param("config.training.lr", "grid", values=[0.001, 0.002, 0.003])
        .obj()
    )


@pytest.mark.parametrize("damage", ["torn trial.json", "empty trial.json", "torn result.json"])
def test_resume_survives_torn_files(tmp_path: Path, damage: str) -> None:
    first = run_manifest(quick_sweep(), tmp_path)
    assert first.code == 0
    victim = first.layout.trial(sorted(first.layout.trial_names())[0])
    if damage == "torn trial.json":
        text = (victim / "trial.json").read_text()
        (victim / "trial.json").write_text(text[: len(text) // 2])
    elif damage == "empty trial.json":
        (victim / "trial.json").write_text("")
    else:
        (victim / RESULT_FILE).write_text('{"status": "succ')
    again = run_manifest(quick_sweep(), tmp_path)
    assert again.code == 0, again.output
    if "trial.json" in damage:
        assert f"left out {victim}" in again.output


@pytest.mark.timeout(60)  # before the fix, opening the FIFO blocked for ever
def test_a_fifo_progress_fails_that_local_trial_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = quick_sweep()
    victim = tmp_path / "torn" / "trials" / "torn-0"
    victim.mkdir(parents=True)
    os.mkfifo(victim / PROGRESS_FILE)  # there before the trial starts
    again = run_manifest(manifest, tmp_path)
    assert "progress.jsonl is a FIFO, not a regular file" in caplog.text
    phases = {t["name"]: t["phase"] for t in again.results()["trials"]}
    assert phases.pop("torn-0") == "Failed"
    assert set(phases.values()) == {"Succeeded"}, phases
