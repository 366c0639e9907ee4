"""The SLURM bridge honours the operator's annotations, with the status shape, phases and
messages of the Kubernetes path, on the real SLURM cluster (RLExperiments in the Kubernetes
test bed; training is real CartPole on the host Python where a test needs a running job).

Covers: `rlops.dev/stop` ending a running job once (its runtime checkpoints and exits 75) and
ending in Stopped with the reason and the last progress, never submitted again;
`rlops.dev/attempt: 2` after a Failed attempt submitting a second job that trains to Succeeded
with attempts=2; a bridge killed between sbatch and its status write for attempt 2 leaving
exactly one job of attempt 2 (the attempt-1 job never adopted); a bump while a job still waits
cancelling it once ("replacing attempt N") before the next attempt is submitted;
`rlops.dev/pause` ending the job once (checkpointed) and ending in Paused with the progress
kept, its removal submitting the same attempt again (twice, never adopting an earlier paused
job), a stop winning over a pause, a pause that comes after the job ended leaving its outcome
alone, and paused training resuming from its checkpoint in the same attempt to Succeeded; a
status that held a RayJob's backendRef losing its RayJob keys when the bridge writes the SLURM
job's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlops.api import RLExperiment
from rlops.backends.slurm import default_run_dir, job_name
from rlops.slurm_bridge.bridge import FINISHED_STATES, SlurmBridge
from tests.slurm.slurm_cluster import SlurmCluster
from tests.slurm.test_bridge import (
    GROUP,
    PLURAL,
    VERSION,
    Crash,
    World,
    cartpole,
    sbatch_calls,
    waiting,
    world,
)
from tests.waiting import wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]
__all__ = ["world"]  # the fixture, shared with test_bridge
FINISHED = ("Succeeded", "Failed", "Stopped")


def annotate(w: World, name: str, annotations: dict[str, str | None]) -> None:
    patch = {"metadata": {"annotations": annotations}}
    w.api.patch_namespaced_custom_object(GROUP, VERSION, w.namespace, PLURAL, name, patch)


def jobs_of(w: World, name: str) -> list[Any]:
    body = w.get(name)
    assert body is not None
    return w.backend.client.find_by_name(job_name(RLExperiment.model_validate(body)))


def checkpointed_and_ended(w: World, job_id: str, run_dir: Path) -> None:
    """Awaits the job's end after a stop or pause: its runtime, signalled alone while Ray
    still ran, checkpointed and exited 75 (a job SLURM had cancelled would have none)."""
    job = wait_until(
        lambda: (j := w.backend.client.jobs([job_id])[job_id]).state in FINISHED_STATES and j,
        60,
        f"job {job_id} to end",
    )
    assert (job.state, job.exit_code) == ("FAILED", 75), job
    result = json.loads((run_dir / "result.json").read_text())
    assert result["exit_code"] == 75 and result["last_checkpoint"], result
    assert (run_dir / result["last_checkpoint"]).is_dir()


def has_progress(w: World, name: str) -> bool:
    status = w.status(name)
    return (
        status.get("phase") == "Running" and (status.get("progress") or {}).get("iteration", 0) > 0
    )


@pytest.mark.training
def test_stop_annotation_ends_the_running_job_once_with_a_checkpoint(world: World) -> None:
    body = world.create(cartpole("halt").stop(timesteps=1_000_000))
    run_dir = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)
    bridge = world.bridge()
    world.poll_until(bridge, lambda: has_progress(world, "halt"), timeout=240)
    job_id = world.status("halt")["backendRef"]["jobId"]

    annotate(world, "halt", {"rlops.dev/stop": "stopped by sweep s"})
    world.commands.clear()
    bridge.poll()
    status = world.status("halt")
    assert status["phase"] == "Stopped"
    assert status["message"] == "stopped: stopped by sweep s"
    assert status["progress"]["iteration"] >= 1 and status["progress"]["timesteps"] > 0
    assert status["completedAt"] and status["backendRef"]["jobId"] == job_id
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False", "Reconciling": "False", "Stalled": "False"
    }  # fmt: skip
    assert world.commands.count("scancel") == 1

    world.commands.clear()
    for _ in range(3):
        bridge.poll()
    assert "scancel" not in world.commands and sbatch_calls(world) == 0  # once; never resubmitted
    assert world.status("halt") == status
    checkpointed_and_ended(world, job_id, run_dir)


@pytest.mark.training
def test_attempt_bump_after_a_failed_attempt_trains_to_succeeded(
    world: World, slurm_cluster: SlurmCluster
) -> None:
    body = world.create(cartpole("again").stop(timesteps=800))
    run_dir = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)
    bridge = world.bridge()
    world.poll_until(bridge, lambda: has_progress(world, "again"), timeout=240)
    first = world.status("again")["backendRef"]["jobId"]
    # Attempt 1 dies: SIGKILL to the batch shell and its children (the runtime included).
    killed = slurm_cluster.run("scancel", "--signal=KILL", "--batch", "--full", first)
    assert killed.returncode == 0, killed.stderr
    world.poll_until(bridge, lambda: world.status("again").get("phase") in FINISHED, 60)
    failed = world.status("again")
    assert failed["phase"] == "Failed" and failed["attempts"] == 1, failed
    assert "killed by signal 9" in failed["message"]
    trained_before_retry = len((run_dir / "progress.jsonl").read_text().splitlines())

    annotate(world, "again", {"rlops.dev/attempt": "2"})  # what a Sweep's retry writes
    bridge.poll()
    submitted = world.status("again")
    assert submitted["phase"] in ("Submitted", "Running") and submitted["attempts"] == 2, submitted
    assert submitted["backendRef"]["jobId"] != first and "result" not in submitted
    assert "completedAt" not in submitted
    world.poll_until(bridge, lambda: world.status("again").get("phase") in FINISHED, 240)
    status = world.status("again")
    assert status["phase"] == "Succeeded", status
    assert status["attempts"] == 2
    assert status["progress"]["timesteps"] >= 800 and status["result"]["stopReason"] == "timesteps"
    assert sbatch_calls(world) == 2
    jobs = jobs_of(world, "again")
    assert [(j.job_id, j.attempt) for j in jobs] == [
        (first, 1), (status["backendRef"]["jobId"], 2)
    ]  # fmt: skip
    records = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert len(records) > trained_before_retry  # attempt 2 trained on in the same run dir
    assert records[-1]["timesteps"] >= 800
    # The job of attempt 2 runs the runtime as attempt 2 (its requeues would count on).
    attempts = [r["attempt"] for r in records]
    assert attempts == sorted(attempts) and set(attempts) == {1, 2}, [
        (r["attempt"], r["timesteps"]) for r in records
    ]
    for job_id in (first, status["backendRef"]["jobId"]):
        assert (run_dir / f"slurm-{job_id}.out").exists()


def test_crash_between_sbatch_and_status_for_attempt_2_submits_it_once(
    world: World, slurm_cluster: SlurmCluster
) -> None:
    world.create(waiting("retry"))
    bridge = world.bridge()
    bridge.poll()
    first = world.status("retry")["backendRef"]["jobId"]
    assert slurm_cluster.run("scancel", first).returncode == 0
    world.poll_until(bridge, lambda: world.status("retry").get("phase") == "Stopped", 30)

    annotate(world, "retry", {"rlops.dev/attempt": "2"})

    def crash(experiment: RLExperiment, ref: Any) -> None:
        raise Crash("killed after sbatch")

    with pytest.raises(Crash):
        world.bridge(on_submitted=crash).poll()
    assert world.status("retry")["attempts"] == 1  # the status write never happened
    restarted = world.bridge()
    restarted.poll()
    restarted.poll()
    status = world.status("retry")
    jobs = jobs_of(world, "retry")
    assert sbatch_calls(world) == 2  # attempt 1 and attempt 2, each once
    assert [j.attempt for j in jobs] == [1, 2]
    assert status["backendRef"]["jobId"] == jobs[1].job_id != first
    assert status["phase"] == "Submitted" and status["attempts"] == 2
    assert status["message"] == f"job {jobs[1].job_id} queued (BeginTime)"

    # Attempt 3 while attempt 2's job still waits: cancelled once, then replaced.
    world.commands.clear()
    annotate(world, "retry", {"rlops.dev/attempt": "3"})
    restarted.poll()
    replacing = world.status("retry")
    assert (replacing["phase"], replacing["message"]) == ("Submitted", "replacing attempt 2")
    assert world.commands.count("scancel") == 1 and sbatch_calls(world) == 0
    world.poll_until(restarted, lambda: world.status("retry").get("attempts") == 3, 30)
    assert world.commands.count("scancel") == 1 and sbatch_calls(world) == 1
    jobs = jobs_of(world, "retry")
    assert [j.attempt for j in jobs] == [1, 2, 3]
    assert jobs[1].state == "CANCELLED"
    assert world.status("retry")["backendRef"]["jobId"] == jobs[2].job_id
    slurm_cluster.run("scancel", jobs[2].job_id)


@pytest.mark.training
def test_paused_training_resumes_from_its_checkpoint_to_succeeded(world: World) -> None:
    body = world.create(cartpole("rung").stop(timesteps=2400))
    run_dir = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)
    bridge = world.bridge()
    world.poll_until(bridge, lambda: has_progress(world, "rung"), timeout=240)
    first = world.status("rung")["backendRef"]["jobId"]
    annotate(world, "rung", {"rlops.dev/pause": "paused by sweep s at an ASHA rung"})
    bridge.poll()
    assert world.status("rung")["phase"] == "Paused"
    checkpointed_and_ended(world, first, run_dir)
    before = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert before[-1]["timesteps"] < 2400, "trained to the end before the pause"

    annotate(world, "rung", {"rlops.dev/pause": None, "rlops.dev/promotions": "1"})
    world.poll_until(bridge, lambda: world.status("rung").get("phase") in FINISHED, 240)
    status = world.status("rung")
    assert status["phase"] == "Succeeded" and status["attempts"] == 1, status
    assert status["backendRef"]["jobId"] != first and sbatch_calls(world) == 2
    records = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    resumed = records[len(before) :]
    assert resumed and {r["attempt"] for r in records} == {1}
    # Continued from a checkpoint of the paused run: not from iteration 1 again.
    assert resumed[0]["iteration"] > 1 and resumed[-1]["timesteps"] >= 2400
    assert status["result"]["stopReason"] == "timesteps"


def test_pause_cancels_once_and_resume_submits_the_same_attempt(world: World) -> None:
    body = world.create(waiting("nap"))
    run_dir = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)
    bridge = world.bridge()
    bridge.poll()
    first = world.status("nap")["backendRef"]["jobId"]
    record = {"iteration": 3, "timesteps": 600, "time_seconds": 4.0, "timestamp": 0.0,
              "episode_return_mean": 21.5, "attempt": 1}  # fmt: skip
    (run_dir / "progress.jsonl").write_text(json.dumps(record) + "\n")

    world.commands.clear()
    annotate(world, "nap", {"rlops.dev/pause": "paused by sweep s at an ASHA rung"})
    bridge.poll()
    status = world.status("nap")
    assert status["phase"] == "Paused" and status["attempts"] == 1, status
    assert status["message"] == "paused: paused by sweep s at an ASHA rung"
    assert status["progress"]["iteration"] == 3 and status["progress"]["timesteps"] == 600
    assert "completedAt" not in status and status["backendRef"]["jobId"] == first
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "False", "Reconciling": "False", "Stalled": "False"
    }  # fmt: skip
    assert world.commands.count("scancel") == 1 and sbatch_calls(world) == 0
    world.commands.clear()
    for _ in range(2):
        bridge.poll()
    assert "scancel" not in world.commands and sbatch_calls(world) == 0  # stays Paused
    assert world.status("nap") == status
    (run_dir / "result.json").write_text(json.dumps({"status": "stopped", "exit_code": 0}))

    # Resumed as a sweep resumes it: the pause removed, the promotion counted.
    annotate(world, "nap", {"rlops.dev/pause": None, "rlops.dev/promotions": "1"})
    world.poll_until(bridge, lambda: world.status("nap").get("phase") == "Submitted", 30)
    resumed = world.status("nap")
    second = resumed["backendRef"]["jobId"]
    assert second != first and resumed["attempts"] == 1  # the same attempt, not a retry
    assert resumed["message"] == f"resumed as SLURM job {second} on cluster hpc"
    assert resumed["progress"]["timesteps"] == 600 and "result" not in resumed
    assert not (run_dir / "result.json").exists()  # the paused run's is set aside
    assert (run_dir / f"result.attempt-1.paused-{first}.json").exists()
    assert sbatch_calls(world) == 1
    body = world.get("nap")
    assert body is not None and body["metadata"]["annotations"]["rlops.dev/promotions"] == "1"

    # A second pause and resume: a third job, the cancelled ones of attempt 1 not adopted.
    annotate(world, "nap", {"rlops.dev/pause": "paused by sweep s at an ASHA rung"})
    world.poll_until(bridge, lambda: world.status("nap").get("phase") == "Paused", 30)
    annotate(world, "nap", {"rlops.dev/pause": None, "rlops.dev/promotions": "2"})
    world.poll_until(bridge, lambda: world.status("nap").get("phase") == "Submitted", 30)
    jobs = jobs_of(world, "nap")
    third = world.status("nap")["backendRef"]["jobId"]
    assert [j.job_id for j in jobs] == [first, second, third] and third not in (first, second)
    assert [j.attempt for j in jobs] == [1, 1, 1] and sbatch_calls(world) == 2
    assert world.status("nap")["attempts"] == 1

    # A stop wins over a pause, and a Paused experiment that is stopped is never resumed.
    annotate(world, "nap", {"rlops.dev/pause": "paused by sweep s at an ASHA rung"})
    world.poll_until(bridge, lambda: world.status("nap").get("phase") == "Paused", 30)
    annotate(world, "nap", {"rlops.dev/stop": "stopped by sweep s"})
    bridge.poll()
    stopped = world.status("nap")
    assert (stopped["phase"], stopped["message"]) == ("Stopped", "stopped: stopped by sweep s")
    assert stopped["progress"]["timesteps"] == 600 and stopped["completedAt"]
    world.commands.clear()
    annotate(world, "nap", {"rlops.dev/pause": None})
    for _ in range(2):
        bridge.poll()
    assert sbatch_calls(world) == 0 and world.status("nap")["phase"] == "Stopped"
    assert all(j.state == "CANCELLED" for j in jobs_of(world, "nap"))


def test_pause_after_the_job_ended_keeps_its_outcome(world: World) -> None:
    world.create(waiting("late"))
    bridge = world.bridge()
    bridge.poll()
    job_id = world.status("late")["backendRef"]["jobId"]
    world.backend.client.cancel(job_id)  # ended from outside before the pause is seen
    wait_until(
        lambda: world.backend.client.jobs([job_id])[job_id].state == "CANCELLED",
        30,
        "the job to reach CANCELLED",
    )
    annotate(world, "late", {"rlops.dev/pause": "paused by sweep s at an ASHA rung"})
    world.commands.clear()
    bridge.poll()
    status = world.status("late")
    assert (
        status["phase"] == "Stopped"
        and status["message"] == f"job {job_id} cancelled outside rlops (scancel)"
    )
    assert "scancel" not in world.commands
    bridge.poll()
    assert world.status("late")["phase"] == "Stopped" and sbatch_calls(world) == 0


def test_status_write_drops_the_rayjob_keys_of_a_moved_trial(world: World) -> None:
    world.create(waiting("moved"))
    kube_status = {
        "phase": "Pending", "backend": "kubernetes", "attempts": 1,
        "backendRef": {"kind": "RayJob", "name": "moved", "namespace": world.namespace},
    }  # fmt: skip
    world.api.patch_namespaced_custom_object_status(
        GROUP, VERSION, world.namespace, PLURAL, "moved", {"status": kube_status}
    )
    bridge: SlurmBridge = world.bridge()
    bridge.poll()
    status = world.status("moved")
    job_id = status["backendRef"]["jobId"]
    assert status["backendRef"] == {"kind": "SlurmJob", "cluster": "hpc", "jobId": job_id}
    assert (status["backend"], status["phase"], status["attempts"]) == ("slurm", "Submitted", 1)
    world.backend.client.cancel(job_id)
