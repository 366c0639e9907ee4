"""The runtime as a process: exit codes, SIGTERM/SIGUSR1 requeue and resume across
attempts, a pause point (RLOPS_PAUSE_AT_ITERATION), a custom environment imported from
user code on Ray workers, progress POSTed to a loopback tracker, and the files of the
run directory.

Every test runs `python -m rlops.runtime` (or `rlops train`) with real RLlib and a
local Ray started by the runtime itself.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import rlops
from rlops.api.runinfo import ExitCode, ProgressRecord, RunResult, read_progress, read_result
from tests.builders import experiment
from tests.conftest import EXAMPLES, ROOT
from tests.runtime.conftest import (
    SMALL_BATCH,
    cartpole,
    finish,
    runtime_env,
    start_runtime,
    tensorboard_scalars,
)
from tests.waiting import wait_until


@pytest.mark.parametrize("source", ["--spec", "--spec-b64"])
def test_an_invalid_manifest_exits_2_listing_every_error(tmp_path: Path, source: str) -> None:
    manifest = (
        experiment("bad").algorithm("PPOO").config("trainng", lr=0.1).set("spec.stop", {}).obj()
    )
    run_dir = tmp_path / "run"
    if source == "--spec":
        process = start_runtime(manifest, run_dir)
    else:
        encoded = base64.b64encode(json.dumps(manifest).encode()).decode()
        process = subprocess.Popen(
            [sys.executable, "-m", "rlops.runtime", "--spec-b64", encoded,
             "--run-dir", str(run_dir)],
            env=runtime_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    code, output = finish(process, timeout=60)

    assert code == ExitCode.INVALID == 2
    for path in ("spec.algorithm", "spec.stop"):
        assert path in output
    result = read_result(run_dir)
    assert result is not None and result.status == "invalid" and result.exit_code == 2
    assert "spec.algorithm" in result.message and "spec.stop" in result.message


@pytest.mark.training
def test_signals_checkpoint_and_requeue_and_each_attempt_resumes(tmp_path: Path) -> None:
    """Attempt 1 gets SIGTERM, attempt 2 SIGUSR1, attempt 3 runs to the end."""
    manifest = (
        cartpole("requeue")
        .stop(iterations=7)
        .set("spec.checkpoint", {"frequency": 0, "atEnd": True})
        .obj()
    )
    run_dir = tmp_path / "run"
    checkpoints: list[int] = []
    for attempt, sig in ((1, signal.SIGTERM), (2, signal.SIGUSR1)):
        seen = len(read_progress(run_dir))
        process = start_runtime(manifest, run_dir)
        wait_until(
            lambda seen=seen: len(read_progress(run_dir)) >= seen + 2,
            timeout=180,
            what=f"two iterations of attempt {attempt}",
        )
        process.send_signal(sig)
        code, output = finish(process)

        assert code == ExitCode.REQUEUE == 75, output
        result = read_result(run_dir)
        assert result is not None and result.status == "requeue", output
        assert sig.name in result.message
        assert result.attempt == attempt
        records = read_progress(run_dir)
        last = records[-1]
        # The signal let the running iteration finish and checkpointed right after it.
        assert result.last_checkpoint == f"checkpoints/checkpoint_{last.iteration:06d}"
        assert (run_dir / result.last_checkpoint).is_dir()
        assert result.iteration == last.iteration and result.timesteps == last.timesteps
        checkpoints.append(last.iteration)

    code, output = finish(start_runtime(manifest, run_dir))
    assert code == ExitCode.SUCCEEDED, output

    records = read_progress(run_dir)
    # Counting goes on over attempts: no iteration lost, none repeated.
    assert [r.iteration for r in records] == list(range(1, 8))
    assert [r.timesteps for r in records] == [SMALL_BATCH * i for i in range(1, 8)]
    attempts = [r.attempt for r in records]
    assert attempts == sorted(attempts) and set(attempts) == {1, 2, 3}
    for attempt, checkpoint in zip((2, 3), checkpoints, strict=True):
        first = next(r for r in records if r.attempt == attempt)
        assert first.iteration == checkpoint + 1
    times = [r.time_seconds for r in records]
    assert times == sorted(times)
    result = read_result(run_dir)
    assert result is not None
    assert (result.status, result.stop_reason, result.attempt) == ("succeeded", "iterations", 3)


@pytest.mark.training
def test_a_pause_point_ends_the_run_exactly_there_and_the_next_run_goes_on(tmp_path: Path) -> None:
    """RLOPS_PAUSE_AT_ITERATION=3: checkpoint after iteration 3, exit 75, stop reason paused;
    the next run, without it, resumes at 4 and runs to its budget."""
    manifest = cartpole("pause").stop(iterations=5).obj()
    run_dir = tmp_path / "run"
    process = start_runtime(manifest, run_dir, env=runtime_env(RLOPS_PAUSE_AT_ITERATION="3"))
    code, output = finish(process)
    assert code == ExitCode.REQUEUE == 75, output
    result = read_result(run_dir)
    assert result is not None
    assert (result.status, result.stop_reason, result.iteration) == ("requeue", "paused", 3)
    assert result.last_checkpoint == "checkpoints/checkpoint_000003"
    assert [r.iteration for r in read_progress(run_dir)] == [1, 2, 3]

    code, output = finish(start_runtime(manifest, run_dir))
    assert code == ExitCode.SUCCEEDED, output
    records = read_progress(run_dir)
    assert [r.iteration for r in records] == [1, 2, 3, 4, 5]
    assert [r.attempt for r in records] == [1, 1, 1, 2, 2]


@pytest.mark.training
def test_a_custom_environment_from_user_code_trains(tmp_path: Path) -> None:
    """The example manifest: the corridor env, imported on a remote env runner too."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "rlops"), "train",
         "--spec", str(EXAMPLES / "custom-env-experiment.yaml"), "--run-dir", str(run_dir)],
        env=runtime_env(RLOPS_PYTHONPATH=str(ROOT / "examples")),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    code, output = finish(process, timeout=300)

    assert code == ExitCode.SUCCEEDED, output
    manifest = yaml.safe_load((EXAMPLES / "custom-env-experiment.yaml").read_text())
    assert manifest["spec"]["resources"]["envRunners"] == 1  # sampling on a Ray worker
    goal = manifest["spec"]["stop"]["episodeReturnMean"]
    result = read_result(run_dir)
    assert result is not None and result.stop_reason == "episode_return_mean"
    records = read_progress(run_dir)
    first, last = records[0].episode_return_mean, records[-1].episode_return_mean
    assert first is not None and last is not None
    assert last >= goal > first  # it learned to walk the corridor


class _Tracker(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def tracker() -> Iterator[tuple[str, list[tuple[str, dict[str, str], Any]]]]:
    """A loopback HTTP server recording every POST: (url, received)."""
    received: list[tuple[str, dict[str, str], Any]] = []
    handler = type("Tracker", (_Tracker,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/progress/default/posted", received
    server.shutdown()


@pytest.mark.training
def test_progress_is_posted_and_the_run_directory_is_complete(
    tmp_path: Path, tracker: tuple[str, list[tuple[str, dict[str, str], Any]]]
) -> None:
    url, received = tracker
    manifest = cartpole("posted").stop(iterations=3).obj()
    run_dir = tmp_path / "run"
    env = runtime_env(
        RLOPS_PROGRESS_URL=url, RLOPS_PROGRESS_TOKEN="s3cret", RLOPS_PROGRESS_INTERVAL_SECONDS="0"
    )
    code, output = finish(start_runtime(manifest, run_dir, env=env))
    assert code == ExitCode.SUCCEEDED, output

    assert all(headers["Authorization"] == "Bearer s3cret" for _, headers, _ in received)
    progress = [ProgressRecord.model_validate(b) for p, _, b in received if "final" not in p]
    finals = [RunResult.model_validate(b) for p, _, b in received if p.endswith("?final=1")]
    assert progress and progress[-1].iteration == 3
    assert [r.iteration for r in progress] == sorted({r.iteration for r in progress})
    assert len(finals) == 1 and finals[0].status == "succeeded"
    assert received[-1][0] == "/progress/default/posted?final=1"

    # The run directory: spec, one progress line per iteration, result, TensorBoard.
    assert yaml.safe_load((run_dir / "spec.yaml").read_text()) == manifest
    assert len((run_dir / "progress.jsonl").read_text().splitlines()) == 3
    result = read_result(run_dir)
    assert result == finals[0]
    # Where it ran: this interpreter, this host, one local Ray node; camelCase on disk.
    assert result is not None and result.runtime is not None
    assert result.runtime.python == sys.executable
    assert result.runtime.hostname == socket.gethostname()
    assert result.runtime.ray_nodes == 1
    on_disk = json.loads((run_dir / "result.json").read_text())["runtime"]
    head, runners = on_disk.pop("rayHead"), on_disk.pop("envRunnerNodes")
    assert on_disk == {
        "hostname": socket.gethostname(), "python": sys.executable,
        "rlopsVersion": rlops.__version__, "rayNodes": 1,
    }  # fmt: skip
    # A local Ray's head; no remote env runners (envRunners: 0), so none placed.
    assert head and ":" in head and runners is None
    assert [s for s, _ in tensorboard_scalars(run_dir / "tensorboard")["rlops/iteration"]] == [
        SMALL_BATCH * i for i in (1, 2, 3)
    ]
