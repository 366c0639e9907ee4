"""`placement.slurm.trialsPerJob` on a real single-node SLURM cluster: a four-trial sweep with
`trialsPerJob: 2` goes to SLURM as two jobs of two trials each (sbatch counted through the
client's observer: 1/K per trial), each trial in its own run directory with its own result;
a trial that fails inside a pack fails alone (its packmate succeeds in the same job), and
its retry is a job of its own. A packed trial paused alone (its packmate trains on in the
same job, no scancel) resumes in a job of its own. A pack still queued is scancelled once
both its trials were stopped, and not before. The trainer is the fake runtime
(tests/slurm/fake_runtime.py), so the scheduling takes seconds; the packed script's
rendering (summed CPUs, a fractional GPU shared by four trials) is checked as text. Real
RLlib training in packs is not exercised here."""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from rlops.api import Phase, RLExperiment
from rlops.backends.slurm import (
    ArrayTask,
    CliSlurmClient,
    SlurmBackend,
    SlurmSettings,
    pack_slots,
    render_pack_script,
)
from rlops.backends.slurm.runs import SlurmRunBackend
from rlops.runner.fleet import Fleet
from rlops.runner.layout import SweepLayout, TrialRecord, read_record
from tests.builders import experiment, sweep
from tests.runner.test_slurm_run import cluster, run_in_process  # noqa: F401 (fixture)
from tests.slurm.fake_runtime import fake_python
from tests.slurm.slurm_cluster import SlurmCluster
from tests.waiting import wait_until


def quarter_gpu(name: str) -> RLExperiment:
    body = (
        experiment(name)
        .set("spec.resources", {"envRunners": 1, "learners": 1, "gpusPerLearner": 0.25})
        .slurm(trialsPerJob=4)
        .obj()
    )
    body["metadata"]["uid"] = f"00000000-0000-0000-0000-00000000000{name[-1]}"
    return RLExperiment.model_validate(body)


def test_a_pack_sums_cpus_and_shares_one_gpu_among_four_quarter_gpu_trials(
    tmp_path: Path,
) -> None:
    tasks = [ArrayTask(quarter_gpu(f"t{i}"), tmp_path / f"t{i}") for i in range(4)]
    slots = pack_slots(tasks)
    assert [s.devices for s in slots] == [(0,)] * 4
    script = render_pack_script(slots, SlurmSettings(python="/usr/bin/python3"))
    # Each trial: driver 1 + one env runner 1 = 2 CPUs; 0.25 GPU each: one device for all.
    assert "#SBATCH --cpus-per-task=8\n" in script
    assert "#SBATCH --gpus-per-node=1\n" in script
    assert "DEVICES=(0 0 0 0)" in script and "THREADS=(2 2 2 2)" in script
    assert script.count("#SBATCH --cpus-per-task") == 1


@pytest.mark.slurm
def test_four_trials_run_in_two_jobs_and_a_failed_one_retries_alone(
    cluster: SlurmCluster,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    python = str(fake_python(tmp_path))
    manifest = (
        sweep("packed")
        .template("stop", {"iterations": 3})
        .param("config.training.lr", "grid", values=[1e-3, 3e-4])
        .param("environment.config.fail_attempts", "grid", values=[0, 1])
        .set("spec.parallelism", 4)
        .set("spec.maxAttempts", 2)
        .set("spec.placement", {"slurm": {"cluster": "hpc", "python": python, "trialsPerJob": 2}})
        .obj()
    )
    root = Path(os.path.realpath(tmp_path)) / "runs"
    code, commands = run_in_process(manifest, root, cluster)
    assert code == 0
    layout = SweepLayout(root / "packed")
    records: dict[int, list[TrialRecord]] = defaultdict(list)
    for i in range(4):
        record = read_record(layout.trial(f"packed-{i}"))
        assert record is not None
        records[record.parameters["environment.config.fail_attempts"]].append(record)
    first_jobs = [r.launches[0].ref for rs in records.values() for r in rs]
    # Four trials in two jobs: each first launch shares its job with exactly one other.
    assert len(set(first_jobs)) == 2
    assert all(first_jobs.count(ref) == 2 for ref in first_jobs)
    for record in records[0]:  # never failing: one launch, succeeded
        assert [launch.exit_code for launch in record.launches] == [0]
    for record in records[1]:  # failed its first attempt alone, retried in its own job
        assert [launch.exit_code for launch in record.launches] == [1, 0]
        retry = record.launches[1].ref
        assert retry not in first_jobs
        others = [r.launches[-1].ref for rs in records.values() for r in rs if r is not record]
        assert retry not in others
    # sbatch: two packs and two lone retries for four trials (no pack for retries).
    assert commands.count("sbatch") == 4


def slurm_fleet(slurm: SlurmCluster) -> tuple[Fleet, CliSlurmClient, list[str]]:
    """A fleet of trials on the test cluster, and the SLURM commands its client runs."""
    commands: list[str] = []
    settings = SlurmSettings(python=sys.executable)
    client = CliSlurmClient(settings, env=slurm.env, observer=lambda c, s, ok: commands.append(c))
    return (
        Fleet(SlurmRunBackend(SlurmBackend(client, settings)), "episode_return_mean"),
        client,
        commands,
    )


@pytest.mark.slurm
def test_a_packed_trial_pauses_alone_and_resumes_in_a_job_of_its_own(
    cluster: SlurmCluster,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    fleet, _, commands = slurm_fleet(cluster)
    python, root = str(fake_python(tmp_path)), Path(os.path.realpath(tmp_path))
    trials = {}
    for name in ("left", "right"):
        manifest = (
            experiment(name)
            .slurm(python=python, trialsPerJob=2)
            .set("spec.environment.config", {"seconds_per_iteration": 0.3})
            .stop(iterations=12)
            .obj()
        )
        record = TrialRecord(name=name, backend="slurm")
        trials[name] = fleet.create(root / name, record, manifest)

    def phase(name: str) -> Phase:
        fleet.refresh()
        return fleet.state(name).phase

    def iterations(name: str) -> list[int]:
        return [p.iteration for p in trials[name].progress.records]

    assert sorted(fleet.launch_pending()) == ["left", "right"]
    assert commands.count("sbatch") == 1  # both in one job
    wait_until(lambda: phase("left") == Phase.RUNNING and len(iterations("left")) >= 2, 60, "2 its")
    fleet.pause("left")
    wait_until(lambda: phase("left") != Phase.RUNNING, 60, "the left trial to pause")
    assert fleet.state("left").phase == Phase.PAUSED
    assert iterations("left")[-1] < 12
    wait_until(lambda: phase("right").finished, 60, "the right trial to finish")
    assert fleet.state("right").phase == Phase.SUCCEEDED and iterations("right") == list(
        range(1, 13)
    )
    assert "scancel" not in commands  # the pause reached the left runtime alone

    fleet.resume("left")
    assert fleet.launch_pending() == ["left"]
    wait_until(lambda: phase("left").finished, 60, "the resumed trial to finish")
    assert fleet.state("left").phase == Phase.SUCCEEDED
    assert iterations("left") == list(range(1, 13))
    first, second = trials["left"].record.launches
    assert (first.exit_code, second.kind, second.exit_code) == (75, "resume", 0)
    assert first.ref == trials["right"].record.launches[0].ref != second.ref
    assert commands.count("sbatch") == 2


@pytest.mark.slurm
def test_a_queued_pack_is_cancelled_once_all_its_trials_are_stopped(
    cluster: SlurmCluster,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    fleet, client, commands = slurm_fleet(cluster)
    python, root = str(fake_python(tmp_path)), Path(os.path.realpath(tmp_path))
    for name in ("left", "right"):  # a pack SLURM keeps pending for an hour
        slurm = {"python": python, "trialsPerJob": 2, "extraDirectives": ["--begin=now+1hour"]}
        manifest = experiment(name).slurm(**slurm).stop(iterations=3).obj()
        fleet.create(root / name, TrialRecord(name=name, backend="slurm"), manifest)
    assert sorted(fleet.launch_pending()) == ["left", "right"]
    assert commands.count("sbatch") == 1
    job_id = fleet.running[0].record.launches[0].ref

    fleet.stop("left")
    fleet.refresh()
    assert "scancel" not in commands  # its packmate still waits to run in that job
    assert client.jobs([job_id])[job_id].state == "PENDING"
    fleet.stop("right")
    assert commands.count("scancel") == 1
    assert client.jobs([job_id])[job_id].state == "CANCELLED"

    def stopped() -> bool:
        fleet.refresh()
        return all(fleet.state(n).phase == Phase.STOPPED for n in ("left", "right"))

    wait_until(stopped, 30, "both trials to be Stopped")
