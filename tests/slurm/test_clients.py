"""The SLURM clients against the real daemons: the CLI client (sbatch/squeue/scancel) and the
slurmrestd client submit, observe in one batched call, find by name and cancel; exit codes
and signals are decoded; a restarted slurmctld is retried through; state mapping of jobs
cancelled from outside.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rlops.api.experiment import Phase
from rlops.backends.slurm import (
    CliSlurmClient,
    JobObservation,
    RestSlurmClient,
    SlurmClient,
    job_phase,
)
from tests.slurm.slurm_cluster import SlurmCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.slurm


def script(body: str, name: str, tmp: Path) -> str:
    return f"#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output={tmp}/slurm-%j.out\n{body}\n"


def await_job(
    client: SlurmClient, job_id: str, done: Callable[[JobObservation], bool], timeout: float = 60
) -> JobObservation:
    return wait_until(
        lambda: (job := client.jobs([job_id]).get(job_id)) is not None and done(job) and job,
        timeout,
        f"job {job_id} to reach the condition",
    )


@pytest.fixture
def rest_client(slurm_cluster: SlurmCluster) -> Iterator[RestSlurmClient]:
    socket = slurm_cluster.start_slurmrestd()
    client = RestSlurmClient(socket=socket, environment=slurm_cluster.env)
    yield client
    client.close()


def test_cli_client_submits_observes_finds_and_cancels(
    cli_client: CliSlurmClient, tmp_path: Path
) -> None:
    calls: list[str] = []
    cli_client.observer = lambda command, seconds, ok: calls.append(command)
    held = cli_client.submit(script("true", "rlops-held-1", tmp_path), hold=True)
    fails = cli_client.submit(script("exit 3", "rlops-fails-1", tmp_path))
    killed = cli_client.submit(script("kill -9 $$", "rlops-killed-1", tmp_path))
    assert await_job(cli_client, fails, lambda j: j.state == "FAILED").exit_code == 3
    assert await_job(cli_client, killed, lambda j: j.state == "FAILED").signal == 9
    calls.clear()
    seen = cli_client.jobs([held, fails, killed])
    assert calls == ["squeue"]  # one call, however many jobs
    assert set(seen) == {held, fails, killed}
    calls.clear()
    # An id slurmctld does not hold: one batched sacct for the missing ones. The test
    # cluster keeps no accounting database, which the first sacct finds out; the job
    # completion log answers from then on (`sacct --completion`).
    assert cli_client.jobs([held, "999999"]).keys() == {held}
    assert calls == ["squeue", "sacct", "sacct"] and cli_client.sacct_mode == "completion"
    calls.clear()
    assert cli_client.jobs([held, fails, "999998", "999999"]).keys() == {held, fails}
    assert calls == ["squeue", "sacct"]
    assert seen[held].state == "PENDING" and "Held" in seen[held].reason
    assert [j.job_id for j in cli_client.find_by_name("rlops-held-1")] == [held]
    cli_client.cancel(held)
    cancelled = await_job(cli_client, held, lambda j: j.state == "CANCELLED")
    assert job_phase(cancelled).phase == Phase.STOPPED
    assert "cancelled outside rlops" in job_phase(cancelled).message
    cli_client.cancel(held)  # again: fine
    assert cli_client.jobs(["999999"]) == {}  # a single unknown id is no error


def test_cli_client_rides_out_a_slurmctld_restart(
    cli_client: CliSlurmClient, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    job = cli_client.submit(script("true", "rlops-restart-1", tmp_path), hold=True)
    slurm_cluster.stop_slurmctld()
    restarter = threading.Timer(2.0, slurm_cluster.start_slurmctld)
    restarter.start()
    try:
        seen = cli_client.jobs([job])  # retried with backoff while the controller is down
    finally:
        restarter.join()
    assert seen[job].state == "PENDING"
    cli_client.cancel(job)


def test_rest_client_submits_queries_and_cancels(
    rest_client: RestSlurmClient, cli_client: CliSlurmClient, tmp_path: Path
) -> None:
    calls: list[str] = []
    rest_client.observer = lambda command, seconds, ok: calls.append(command)
    text = script("sleep 30", "rlops-rest-1", tmp_path) + "#SBATCH --time=00:05:00\n"
    job = rest_client.submit(text, hold=True)
    seen = rest_client.jobs([job])
    assert seen[job].name == "rlops-rest-1" and seen[job].state == "PENDING"
    assert [j.job_id for j in rest_client.find_by_name("rlops-rest-1")] == [job]
    # The CLI sees the same job: the REST client translated the directives.
    assert cli_client.jobs([job])[job].name == "rlops-rest-1"
    rest_client.cancel(job)
    assert await_job(rest_client, job, lambda j: j.state == "CANCELLED").state == "CANCELLED"
    rest_client.cancel("999999")  # unknown: fine
    assert calls[:2] == ["rest POST job", "rest GET jobs"]


def test_rest_client_sees_and_cancels_only_its_own_jobs(
    rest_client: RestSlurmClient, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """A job of another user (root submits it as `nobody`) is neither found nor cancelled
    by the REST client, which talks as root here; the CLI client's `--me` does the same."""
    tmp_path.chmod(0o777)
    text = script("sleep 30", "rlops-other-user", tmp_path) + "#SBATCH --time=00:05:00\n"
    file = tmp_path / "other.sh"
    file.write_text(text)
    done = slurm_cluster.run("sbatch", "--parsable", "--hold", "--uid=nobody", str(file))
    assert done.returncode == 0, done.stderr
    other = done.stdout.strip().split(";")[0]
    try:
        assert slurm_cluster.run("squeue", "-h", "-j", other).stdout.strip()  # it is queued
        assert rest_client.find_by_name("rlops-other-user") == []
        assert rest_client.jobs([other]) == {}
        rest_client.cancel(other)
        shown = slurm_cluster.run("squeue", "-h", "-j", other, "-o", "%T").stdout.strip()
        assert shown == "PENDING"  # still there: not ours to cancel
    finally:
        slurm_cluster.run("scancel", other)
