"""An object store that cannot be reached at the start (`--run-dir s3://...` with a missing
bucket, or an endpoint nobody listens on): `python -m rlops.runtime` ends with exit 1 and no
traceback, its last line names the storage path and the cause, the failed result goes to the
progress endpoint (and to the store when it takes a write), and the operator's Failed
message is that account, read from the Ray job's message that quotes the runtime's last
line. Against moto's S3 server on loopback and a closed loopback port; the bucket check
against the GCS emulator too."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from rlops.api import Phase
from rlops.api.runinfo import ExitCode, RunResult
from rlops.backends.kuberay.status import failure_detail
from rlops.runtime.storage import StoreMirror, StoreUnreachable, put_file
from tests.builders import rayjob
from tests.operator.test_pause_point import trial
from tests.runtime.conftest import cartpole, runtime_env
from tests.runtime.test_process import tracker  # noqa: F401  (a fixture)
from tests.storage.conftest import Bucket
from tests.storage.s3server import S3Server

Tracked = tuple[str, list[tuple[str, dict[str, str], Any]]]


def run(tmp_path: Path, uri: str, env: dict[str, str]) -> tuple[int, str]:
    spec = tmp_path / "manifest.yaml"
    spec.write_text(yaml.safe_dump(cartpole("unreachable").stop(iterations=1).obj()))
    argv = [sys.executable, "-m", "rlops.runtime", "--spec", str(spec), "--run-dir", uri]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def failed_cleanly(tmp_path: Path, uri: str, env: dict[str, str], tracked: Tracked) -> str:
    """Run against `uri`: exit 1, no traceback, one failed result posted; the last line."""
    code, output = run(tmp_path, uri, env)
    assert code == ExitCode.FAILED, output
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"rlops: failed (storage.path {uri}: "), output
    finals = [RunResult.model_validate(b) for p, _, b in tracked[1] if p.endswith("?final=1")]
    [result] = finals
    assert (result.status, result.exit_code) == ("failed", ExitCode.FAILED)
    assert result.message.startswith(f"storage.path {uri}: the object store cannot be reached")
    assert result.message in last
    return last


def test_a_missing_bucket_fails_cleanly_naming_the_path(
    s3: S3Server,
    tmp_path: Path,
    tracker: Tracked,  # noqa: F811
) -> None:
    uri = "s3://no-such-bucket/team/exp"
    env = runtime_env(**s3.env, RLOPS_PROGRESS_URL=tracker[0], RLOPS_PROGRESS_TOKEN="t",
                      RLOPS_SCRATCH_DIR=str(tmp_path))  # fmt: skip
    last = failed_cleanly(tmp_path, uri, env, tracker)
    assert last.endswith("the bucket 'no-such-bucket' does not exist); exit 1")
    assert list(tmp_path.glob("rlops-run-*")) == []  # no scratch directory left behind
    assert s3.files("no-such-bucket") == {}  # nowhere to write result.json


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_dead_endpoint_fails_cleanly_naming_the_path_and_the_cause(
    s3: S3Server,
    tmp_path: Path,
    tracker: Tracked,  # noqa: F811
) -> None:
    uri = "s3://runs/team/exp"
    dead = {**s3.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}
    env = runtime_env(**dead, RLOPS_PROGRESS_URL=tracker[0], RLOPS_PROGRESS_TOKEN="t")
    last = failed_cleanly(tmp_path, uri, env, tracker)
    assert "could not connect" in last.lower()  # the cause, as the S3 client words it


def test_the_mirror_names_the_store_and_a_writable_bucket_takes_the_result(
    store: Bucket, tmp_path: Path
) -> None:
    absent = f"{store.scheme}://absent/x"
    try:
        StoreMirror(absent, tmp_path / "a").check()
    except StoreUnreachable as exc:
        assert str(exc) == (
            f"storage.path {absent}: the object store cannot be reached or read: "
            "the bucket 'absent' does not exist"
        )
    else:
        raise AssertionError("a missing bucket passed the check")
    StoreMirror(store.uri("x"), tmp_path / "b").check()  # an existing one passes
    assert put_file(store.uri("x"), "result.json", b"{}")
    assert store.server.read(f"{store.name}/x/result.json") == b"{}"
    assert not put_file(absent, "result.json", b"{}")


RAY_MESSAGE = (
    "Job entrypoint command failed with exit code 1, last available logs (truncated to "
    "20,000 chars):\n2025-01-01 12:00:00 rlops.runtime: starting\n"
    "rlops: failed (storage.path s3://runs/ns/cp: the object store cannot be reached or "
    "read: the bucket 'runs' does not exist); exit 1\n"
)


def test_the_failed_phase_carries_the_runtimes_account() -> None:
    from datetime import UTC, datetime

    from tests.operator.test_experiment_reconcile import reconcile

    status = {"phase": "Running", "backend": "kubernetes", "attempts": 1,
              "backendRef": {"kind": "RayJob", "name": "cp", "namespace": "ns"}}  # fmt: skip
    job = rayjob("Failed", "FAILED", message=RAY_MESSAGE)
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    actions = reconcile(trial(status), job, now)  # the RayJob as the KubeRay backend sees it
    assert actions.status is not None and actions.status.phase is Phase.FAILED
    assert actions.status.message == (
        "training failed: storage.path s3://runs/ns/cp: the object store cannot be reached or "
        "read: the bucket 'runs' does not exist"
    )
    assert failure_detail("exit code 3, no logs") == "exit code 3, no logs"
