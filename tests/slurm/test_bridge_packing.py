"""`placement.slurm.trialsPerJob` through the SLURM bridge, on the real SLURM cluster, with the
Sweep's children in the Kubernetes test bed (API emulator) as the operator makes them: the
sweep's own reconcile (`rlops.operator.sweeps.reconcile_sweep`) plans the children and their
retry patches, which the test applies to the test bed where the operator would.

Covers: a four-trial Sweep with `trialsPerJob: 2` going to SLURM as two pack jobs (sbatch
counted through the client's observer), every child's status naming its pack's job id, a
trial failing inside its pack failing alone (its packmate succeeds in the same job) and its
retry, planned by the sweep, running alone in a job of its own, every child Succeeded in the
end; a running packed trial stopped by `rlops.dev/stop` ending alone (its runtime exits
75, no scancel) while its packmate trains on in the same job, then that packmate paused
alone (exit 75, no scancel) and resumed in a job of its own to Succeeded with continued
iterations; a bridge killed between a pack's sbatch and its status writes adopting the pack
next poll (one sbatch); a pack still queued whose trials are stopped (one by
`rlops.dev/stop`, one deleted) being scancelled once, and not before the last of them.
The trainer is the fake runtime (tests/slurm/fake_runtime.py), so the scheduling takes
seconds; real RLlib training in packs is not exercised here.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rlops.api import RLExperiment, Sweep
from rlops.backends.slurm import default_run_dir
from rlops.operator.sweeps import reconcile_sweep
from tests.builders import sweep
from tests.slurm.fake_runtime import fake_python
from tests.slurm.test_bridge import GROUP, PLURAL, VERSION, Crash, World, sbatch_calls, world
from tests.waiting import wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]
__all__ = ["world"]  # the fixture, shared with test_bridge


def packed_sweep(
    tmp_path: Path,
    name: str,
    namespace: str,
    parallelism: int = 4,
    iterations: int = 3,
    fails: tuple[int, ...] = (0, 1),
    seconds_per_iteration: float = 0.05,
    slurm: dict[str, Any] | None = None,
) -> Sweep:
    """A grid over lr and the fake trainer's `fail_attempts` (1: the first attempt fails),
    two trials to a job, two attempts each."""
    placement = {"cluster": "hpc", "python": str(fake_python(tmp_path)), "trialsPerJob": 2}
    environment = {"id": "CartPole-v1", "config": {"seconds_per_iteration": seconds_per_iteration}}
    body = (
        sweep(name, namespace=namespace)
        .template("stop", {"iterations": iterations})
        .template("environment", environment)
        .template("placement", {"backend": "slurm", "slurm": {**placement, **(slurm or {})}})
        .param("config.training.lr", "grid", values=[1e-3, 3e-4])
        .param("environment.config.fail_attempts", "grid", values=list(fails))
        .set("spec.parallelism", parallelism)
        .set("spec.maxAttempts", 2)
        .obj()
    )
    body["metadata"].update(uid=f"{name}-uid", generation=1)
    return Sweep.model_validate(body)


def reconcile(w: World, spec: Sweep) -> bool:
    """One reconcile of the sweep as the operator does it: create the planned children,
    apply the planned patches (retries); True once the sweep is done."""
    listed: Any = w.api.list_namespaced_custom_object(GROUP, VERSION, w.namespace, PLURAL)
    actions = reconcile_sweep(spec, listed["items"], datetime.now(UTC))
    for child in actions.create:
        w.api.create_namespaced_custom_object(GROUP, VERSION, w.namespace, PLURAL, child)
    for name, patch in actions.patches:
        w.api.patch_namespaced_custom_object(GROUP, VERSION, w.namespace, PLURAL, name, patch)
    return actions.done


def test_four_trials_in_two_jobs_and_a_failed_one_retries_alone(
    world: World, tmp_path: Path
) -> None:
    spec = packed_sweep(tmp_path, "packed", world.namespace)
    bridge = world.bridge()
    reconcile(world, spec)
    names = [f"packed-{i}" for i in range(4)]
    assert all(world.get(n) is not None for n in names)
    bridge.poll()
    first_jobs = {n: world.status(n)["backendRef"]["jobId"] for n in names}
    # Four trials in two jobs: each job holds exactly two of them.
    assert sorted(Counter(first_jobs.values()).values()) == [2, 2]
    assert sbatch_calls(world) == 2

    failing = {
        n for n in names if (world.get(n) or {})["spec"]["environment"]["config"]["fail_attempts"]
    }
    assert len(failing) == 2
    world.poll_until(
        bridge,
        lambda: all(world.status(n).get("phase") in ("Succeeded", "Failed") for n in names),
        timeout=120,
    )
    for n in names:  # a failed trial fails alone: its packmate succeeded in the same job
        status = world.status(n)
        assert status["phase"] == ("Failed" if n in failing else "Succeeded"), status
        assert status["attempts"] == 1 and status["backendRef"]["jobId"] == first_jobs[n]
    assert sbatch_calls(world) == 2

    def settled() -> bool:
        done = reconcile(world, spec)
        return done and all(world.status(n).get("phase") == "Succeeded" for n in names)

    world.poll_until(bridge, settled, timeout=120)
    for n in names:
        status = world.status(n)
        assert status["phase"] == "Succeeded", status
        if n in failing:  # retried by the sweep as attempt 2, in a job of its own
            assert status["attempts"] == 2
            retry = status["backendRef"]["jobId"]
            assert retry not in first_jobs.values()
            others = [world.status(m)["backendRef"]["jobId"] for m in names if m != n]
            assert retry not in others
        else:
            assert status["attempts"] == 1 and status["backendRef"]["jobId"] == first_jobs[n]
    # sbatch: two packs for four trials, and one lone job per retry.
    assert sbatch_calls(world) == 4


def annotate(w: World, name: str, annotations: dict[str, str | None]) -> None:
    patch = {"metadata": {"annotations": annotations}}
    w.api.patch_namespaced_custom_object(GROUP, VERSION, w.namespace, PLURAL, name, patch)


def test_running_packed_trials_stop_and_pause_alone(world: World, tmp_path: Path) -> None:
    # Two trials that succeed, slowly enough to be stopped and paused mid-run.
    spec = packed_sweep(tmp_path, "run", world.namespace, parallelism=2, iterations=30,
                        fails=(0,), seconds_per_iteration=0.3)  # fmt: skip
    bridge = world.bridge()
    reconcile(world, spec)
    run_dirs = {}
    for name in ("run-0", "run-1"):
        body = world.get(name)
        assert body is not None
        run_dirs[name] = default_run_dir(RLExperiment.model_validate(body), world.backend.settings)

    def iteration(name: str) -> int:
        return int((world.status(name).get("progress") or {}).get("iteration", 0))

    world.poll_until(bridge, lambda: iteration("run-0") >= 2 and iteration("run-1") >= 2, 60)
    job_id = world.status("run-0")["backendRef"]["jobId"]
    assert world.status("run-1")["backendRef"]["jobId"] == job_id
    world.commands.clear()
    annotate(world, "run-0", {"rlops.dev/stop": "stopped by sweep run"})
    bridge.poll()
    assert world.status("run-0")["phase"] == "Stopped"
    exit_0 = run_dirs["run-0"] / f".slurm-exit-{job_id}"
    wait_until(lambda: exit_0.exists(), 30, "the stopped trial's exit record")
    assert exit_0.read_text().strip() == "75"  # its runtime checkpointed and ended alone
    reached = iteration("run-1")  # its packmate trains on in the same job
    world.poll_until(bridge, lambda: iteration("run-1") >= reached + 3, 30)
    assert world.status("run-1")["phase"] == "Running"
    assert world.status("run-1")["backendRef"]["jobId"] == job_id

    annotate(world, "run-1", {"rlops.dev/pause": "paused by sweep run"})
    world.poll_until(bridge, lambda: world.status("run-1").get("phase") == "Paused", 30)
    exit_1 = run_dirs["run-1"] / f".slurm-exit-{job_id}"
    wait_until(lambda: exit_1.exists(), 30, "the paused trial's exit record")
    assert exit_1.read_text().strip() == "75" and iteration("run-1") < 30
    assert "scancel" not in world.commands and sbatch_calls(world) == 0  # no job signalled

    annotate(world, "run-1", {"rlops.dev/pause": None})  # resumed: a job of its own
    world.poll_until(bridge, lambda: world.status("run-1").get("phase") == "Succeeded", 60)
    status = world.status("run-1")
    assert status["backendRef"]["jobId"] != job_id and sbatch_calls(world) == 1
    assert iteration("run-1") == 30 and status["attempts"] == 1
    progress = (run_dirs["run-1"] / "progress.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in progress] == list(range(1, 31))
    assert world.status("run-0")["phase"] == "Stopped" and iteration("run-0") < 30


def test_a_queued_pack_whose_trials_are_all_stopped_is_cancelled(
    world: World, tmp_path: Path
) -> None:
    # One pack of two, which SLURM keeps pending for an hour.
    waiting = {"extraDirectives": ["--begin=now+1hour"]}
    spec = packed_sweep(tmp_path, "held", world.namespace, parallelism=2, slurm=waiting)
    reconcile(world, spec)

    def crash(experiment: RLExperiment, ref: Any) -> None:
        raise Crash("killed after sbatch")

    with pytest.raises(Crash):
        world.bridge(on_submitted=crash).poll()
    assert world.status("held-0") == {} and sbatch_calls(world) == 1
    bridge = world.bridge()  # restarted: the same pack again, its job adopted
    bridge.poll()
    jobs = {world.status(n)["backendRef"]["jobId"] for n in ("held-0", "held-1")}
    assert len(jobs) == 1 and sbatch_calls(world) == 1
    (job_id,) = jobs
    assert world.backend.client.jobs([job_id])[job_id].state == "PENDING"

    annotate(world, "held-0", {"rlops.dev/stop": "stopped by sweep held"})
    bridge.poll()
    assert world.status("held-0")["phase"] == "Stopped"
    assert world.status("held-1")["phase"] == "Submitted"
    assert "scancel" not in world.commands  # its packmate still waits to run in that job
    assert world.backend.client.jobs([job_id])[job_id].state == "PENDING"

    world.api.delete_namespaced_custom_object(GROUP, VERSION, world.namespace, PLURAL, "held-1")
    world.poll_until(bridge, lambda: world.get("held-1") is None, timeout=30)
    assert world.commands.count("scancel") == 1  # the last trial gone: the pack is cancelled
    wait_until(
        lambda: world.backend.client.jobs([job_id])[job_id].state == "CANCELLED",
        30,
        f"pack job {job_id} to be cancelled",
    )
