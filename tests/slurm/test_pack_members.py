"""A pack job as each of its trials sees it (no SLURM: the fault tests' in-memory SLURM).

Covers: `submit_pack` recording the job's run directories in each trial's (`pack_members`);
`trial_view` turning the running pack into that trial's own ended process once its exit code
is recorded (0: COMPLETED, else FAILED with the code) and leaving a job of its own alone;
`SlurmBackend.end` of a packed trial writing its stop file instead of signalling the job;
`stop_packed` cancelling a queued pack only once every trial of it was told to stop, and
never a running one (its script stops each trial itself).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rlops.api import RLExperiment
from rlops.backends.slurm import (
    ArrayTask,
    SlurmBackend,
    SlurmSettings,
    pack_members,
    pack_slots,
)
from rlops.backends.slurm.pack import STOP_FILE, trial_view
from tests.builders import experiment, slurm_job
from tests.faults.fakes import FakeSlurm


def packed(tmp_path: Path) -> tuple[FakeSlurm, SlurmBackend, list[Path], str]:
    slurm = FakeSlurm()
    backend = SlurmBackend(slurm, SlurmSettings(python="/usr/bin/python3"))
    tasks = []
    for i in range(2):
        body = experiment(f"t{i}").slurm(trialsPerJob=2).obj()
        body["metadata"]["uid"] = f"00000000-0000-0000-0000-00000000000{i}"
        tasks.append(ArrayTask(RLExperiment.model_validate(body), tmp_path / f"t{i}"))
    ref = backend.submit_pack(pack_slots(tasks))
    assert ref.job_id is not None
    return slurm, backend, [t.run_dir for t in tasks], ref.job_id


def test_each_trial_knows_its_pack_and_sees_its_own_end(tmp_path: Path) -> None:
    slurm, _, run_dirs, job_id = packed(tmp_path)
    assert pack_members(run_dirs[0], job_id) == run_dirs == pack_members(run_dirs[1], job_id)
    assert pack_members(run_dirs[0], "999") is None  # another job: not this pack
    job = slurm.jobs([job_id])[job_id]
    assert trial_view(job, run_dirs[0], job_id) == job  # no exit recorded yet: the job
    (run_dirs[0] / f".slurm-exit-{job_id}").write_text("0\n")
    (run_dirs[1] / f".slurm-exit-{job_id}").write_text("1\n")
    done, failed = (trial_view(job, d, job_id) for d in run_dirs)
    assert done is not None and (done.state, done.exit_code) == ("COMPLETED", 0)
    assert failed is not None and (failed.state, failed.exit_code) == ("FAILED", 1)
    alone = slurm_job("RUNNING", "7")
    assert trial_view(alone, run_dirs[0], "7") == alone
    assert trial_view(None, run_dirs[0], job_id) is None


def test_a_queued_pack_is_cancelled_only_when_every_trial_is_stopped(tmp_path: Path) -> None:
    slurm, backend, run_dirs, job_id = packed(tmp_path)
    slurm.table[job_id] = replace(slurm.table[job_id], state="PENDING")
    backend.end([job_id], run_dirs[0])  # a stop of one trial: its stop file, no signal
    assert (run_dirs[0] / STOP_FILE).read_text() == job_id
    assert slurm.cancelled == []
    assert backend.stop_packed(run_dirs[1], job_id) is True
    assert slurm.cancelled == [job_id]


def test_a_running_pack_is_never_cancelled_for_its_stops(tmp_path: Path) -> None:
    slurm, backend, run_dirs, job_id = packed(tmp_path)
    backend.cancel_jobs([job_id], run_dirs[0])  # a deleted trial: its stop file alone
    assert backend.stop_packed(run_dirs[1], job_id) is False
    assert slurm.cancelled == []
    assert all((d / STOP_FILE).read_text() == job_id for d in run_dirs)
