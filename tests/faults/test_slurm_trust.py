"""Trusting SLURM only as far as it is right: squeue and scancel are asked about our own
jobs only (`--me`) and the scontrol fallback keeps jobs of our uid; a `Key=` inside free
text (a comment, a job name) never overrides a real field; a broken squeue is tried again
later instead of never; a job missing from one garbled answer is not declared gone until
`missing_polls` polls in a row. The SLURM commands here are stand-in scripts that log their
arguments (emulated); the real commands are exercised by tests/slurm."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from rlops.backends.slurm import CliSlurmClient, SlurmSettings
from rlops.backends.slurm import cli_client as cli
from rlops.backends.slurm.parsers import parse_scontrol
from tests.faults.fakes import FakeSlurm, MemoryStore, bridge, slurm_experiment

UID = os.getuid()
REAL_ORDER = (
    "JobId={id} JobName={name} UserId=u({uid}) GroupId=g(0) Priority=1 Account=a QOS=normal "
    "JobState=RUNNING Reason=None Requeue=1 Restarts=0 ExitCode=0:0 SubmitTime=2026-01-01T00:00:00 "
    "StartTime=2026-01-01T00:00:01 EndTime=Unknown NodeList=n1 Command=/x WorkDir=/w "
    "Comment={comment} StdOut=/o"
)


def test_a_key_inside_a_comment_or_name_overrides_nothing() -> None:
    line = REAL_ORDER.format(
        id=7, name="my job JobState=COMPLETED", uid=UID,
        comment="x JobState=COMPLETED ExitCode=0:0 UserId=v(5) NodeList=evil",
    )  # fmt: skip
    (job,) = parse_scontrol(line)
    assert (job.state, job.exit_code, job.user_id, job.nodes) == ("RUNNING", 0, UID, "n1")
    assert job.name == "my job JobState=COMPLETED"


def stand_ins(tmp_path: Path, squeue: str, scontrol: str = "") -> tuple[CliSlurmClient, Path]:
    """A client whose SLURM commands are scripts that log their argv to `calls`."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    for name, body in {"squeue": squeue, "scontrol": scontrol, "scancel": "exit 0",
                       "sacct": "exit 1"}.items():  # fmt: skip
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n{body}\n')
        script.chmod(0o755)
    settings = SlurmSettings(bin_dir=bin_dir, retries=0, backoff_seconds=0.01)
    return CliSlurmClient(settings), calls


def test_squeue_and_scancel_ask_about_our_jobs_only(tmp_path: Path) -> None:
    client, calls = stand_ins(tmp_path, squeue="exit 0")
    client.find_by_name("rlops-x-1")
    client.jobs(["5"])
    client.cancel("5")
    lines = calls.read_text().splitlines()
    assert all("--me" in line for line in lines if line.split()[0] in ("squeue", "scancel"))
    assert len(lines) >= 3


def test_scontrol_fallback_keeps_jobs_of_our_uid(tmp_path: Path) -> None:
    ours = REAL_ORDER.format(id=1, name="rlops-x-1", uid=UID, comment="rlops-uid=x")
    theirs = REAL_ORDER.format(id=2, name="rlops-x-1", uid=UID + 1, comment="rlops-uid=x")
    client, _ = stand_ins(
        tmp_path,
        squeue="echo 'munge error' >&2; exit 1",
        scontrol=f"echo '{ours}'\necho '{theirs}'",
    )
    assert [j.job_id for j in client.find_by_name("rlops-x-1")] == ["1"]


def test_a_broken_squeue_is_tried_again_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "failed-once"
    client, calls = stand_ins(
        tmp_path,
        squeue=f"[ -e {flag} ] && exit 0; touch {flag}; echo 'munge error' >&2; exit 1",
        scontrol="exit 0",
    )
    client.jobs(["5"])
    assert client.squeue_broken
    monkeypatch.setattr(cli, "SQUEUE_RETRY_SECONDS", 0.0)
    client.jobs(["5"])
    assert client.squeue_broken is None
    used = [line.split()[0] for line in calls.read_text().splitlines()]
    assert used.count("squeue") == 2


def test_one_garbled_answer_does_not_end_a_running_job(tmp_path: Path) -> None:
    store, slurm = MemoryStore(), FakeSlurm()
    store.add(slurm_experiment("train"))
    b = bridge(store, slurm, tmp_path / "runs")
    b.poll()
    job_id = store.status("train")["backendRef"]["jobId"]
    job = slurm.table.pop(job_id)  # squeue's answer lost the job; sacct knows nothing
    for _ in range(b.settings.missing_polls - 1):
        b.poll()
        assert store.status("train")["phase"] != "Failed"
    slurm.table[job_id] = replace(job, state="RUNNING")  # it was there all along
    b.poll()
    assert store.status("train")["phase"] in ("Pending", "Running")
    del slurm.table[job_id]  # now really gone, and no result.json
    for _ in range(b.settings.missing_polls):
        b.poll()
    status = store.status("train")
    assert status["phase"] == "Failed" and "no longer known" in status["message"]
