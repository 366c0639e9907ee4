"""Run directories in an object store, each test against `s3://` (moto's S3 server) and
`gs://` (gcp-storage-emulator's GCS server), both on loopback.

- the mirror uploads a run directory's files (never hidden ones: partial checkpoints,
  temporary files), deletes pruned checkpoints from the store, and a fresh scratch directory
  pulled from the store resumes from the same checkpoint;
- `python -m rlops.runtime --run-dir s3://... (gs://...)` (real RLlib) SIGKILLed mid-run, once a
  checkpoint is in the store: the next run is attempt 2, resumes from that checkpoint with
  continued iterations and timesteps, and progress.jsonl, result.json and the attempt logs
  land in the store; the finished attempt leaves nothing in the scratch directory.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlops.api.experiment import CheckpointSpec
from rlops.api.runinfo import ExitCode, ProgressRecord, RunResult
from rlops.runtime.checkpoints import METADATA_FILE, CheckpointInfo, CheckpointStore
from rlops.runtime.storage import StoreMirror
from tests.runtime.conftest import SMALL_BATCH, cartpole, finish, runtime_env
from tests.storage.conftest import Bucket
from tests.waiting import wait_until


def fake_checkpoint(root: Path, iteration: int) -> None:
    info = CheckpointInfo(root, iteration, iteration * 10, 1.0, 1, None, None, None)
    CheckpointStore(root, CheckpointSpec()).adopt(_weights(root, iteration), info)


def _weights(root: Path, iteration: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    source = root.parent / f"weights-{iteration}.bin"
    source.write_bytes(bytes(range(iteration + 1)))
    return source


def test_the_mirror_uploads_prunes_and_pulls_back(store: Bucket, tmp_path: Path) -> None:
    server, bucket = store.server, store.name
    local = tmp_path / "scratch"
    checkpoints = local / "checkpoints"
    for iteration in (1, 2):
        fake_checkpoint(checkpoints, iteration)
    (local / "progress.jsonl").write_text('{"iteration": 2}\n')
    (checkpoints / ".partial_checkpoint_000003").mkdir()
    (checkpoints / ".partial_checkpoint_000003" / "half.bin").write_bytes(b"x")
    (local / ".result.json.tmp").write_text("{")
    mirror = StoreMirror(store.uri("team/exp"), local)

    assert mirror.push() == 5  # two weights, two metadata files, progress.jsonl
    prefix = f"{bucket}/team/exp"
    assert sorted(server.files(prefix)) == [
        f"{prefix}/checkpoints/checkpoint_000001/{METADATA_FILE}",
        f"{prefix}/checkpoints/checkpoint_000001/weights-1.bin",
        f"{prefix}/checkpoints/checkpoint_000002/{METADATA_FILE}",
        f"{prefix}/checkpoints/checkpoint_000002/weights-2.bin",
        f"{prefix}/progress.jsonl",
    ]
    assert mirror.push() == 0  # nothing changed

    CheckpointStore(checkpoints, CheckpointSpec(keep=1)).prune()  # keeps the latest only
    (local / "progress.jsonl").write_text('{"iteration": 2}\n{"iteration": 3}\n')
    assert mirror.push() == 1
    assert sorted(server.files(f"{prefix}/checkpoints")) == [
        f"{prefix}/checkpoints/checkpoint_000002/{METADATA_FILE}",
        f"{prefix}/checkpoints/checkpoint_000002/weights-2.bin",
    ]
    assert server.read(f"{prefix}/progress.jsonl").count(b"\n") == 2

    fresh = tmp_path / "fresh"
    assert StoreMirror(store.uri("team/exp"), fresh).pull() == 3
    latest = CheckpointStore(fresh / "checkpoints", CheckpointSpec()).latest()
    assert latest is not None and (latest.iteration, latest.timesteps) == (2, 20)
    assert (latest.path / "weights-2.bin").read_bytes() == bytes(range(3))


def test_a_checkpoint_without_its_metadata_in_the_store_is_not_resumed(
    store: Bucket, tmp_path: Path
) -> None:
    """A pod killed while uploading a checkpoint leaves it without its metadata file (uploaded
    last): the next attempt resumes from the one before."""
    local = tmp_path / "scratch"
    for iteration in (1, 2):
        fake_checkpoint(local / "checkpoints", iteration)
    StoreMirror(store.uri("exp"), local).push()
    metadata = f"{store.name}/exp/checkpoints/checkpoint_000002/{METADATA_FILE}"
    store.server.filesystem().delete_file(metadata)
    fresh = tmp_path / "fresh"
    StoreMirror(store.uri("exp"), fresh).pull()
    latest = CheckpointStore(fresh / "checkpoints", CheckpointSpec()).latest()
    assert latest is not None and latest.iteration == 1


def start(manifest_path: Path, uri: str, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "rlops.runtime", "--spec", str(manifest_path), "--run-dir", uri]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.training
def test_a_killed_run_resumes_from_its_checkpoint_in_the_store(
    store: Bucket, tmp_path: Path
) -> None:
    server, bucket = store.server, store.name
    manifest = cartpole("store-resume").stop(iterations=6).set("spec.checkpoint", {"frequency": 1})
    spec = tmp_path / "manifest.yaml"
    spec.write_text(yaml.safe_dump(manifest.obj()))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = runtime_env(
        **server.env, RLOPS_STORAGE_SYNC_SECONDS="0.5", RLOPS_SCRATCH_DIR=str(scratch),
        RLOPS_DRIVER_LOG="true",
    )  # fmt: skip
    uri, prefix = store.uri("team/store-resume"), f"{bucket}/team/store-resume"
    marker = f"{prefix}/checkpoints/checkpoint_000002/{METADATA_FILE}"

    first = start(spec, uri, env)
    wait_until(lambda: marker in server.files(prefix), 180, "checkpoint 2 in the store")
    first.send_signal(signal.SIGKILL)  # no chance to checkpoint or push again
    finish(first)
    leftover = set(scratch.iterdir())  # the killed attempt's scratch directory
    kept = [json.loads(server.read(p)) for p in server.files(prefix) if p.endswith(METADATA_FILE)]
    resumed_from = max(k["iteration"] for k in kept)
    assert resumed_from >= 2

    code, output = finish(start(spec, uri, env))
    assert code == ExitCode.SUCCEEDED, output
    assert "resuming from" in output
    result = RunResult.model_validate_json(server.read(f"{prefix}/result.json"))
    assert (result.status, result.attempt, result.iteration) == ("succeeded", 2, 6)
    assert result.timesteps == 6 * SMALL_BATCH
    records = [
        ProgressRecord.model_validate_json(line)
        for line in server.read(f"{prefix}/progress.jsonl").decode().splitlines()
    ]
    second = [r for r in records if r.attempt == 2]
    assert [r.iteration for r in second] == list(range(resumed_from + 1, 7))
    assert [r.timesteps for r in second] == [i * SMALL_BATCH for i in range(resumed_from + 1, 7)]
    files = server.files(prefix)
    assert f"{prefix}/attempts/2.log" in files and f"{prefix}/spec.yaml" in files
    assert set(scratch.iterdir()) == leftover  # the finished attempt removed its own
