"""Weights & Biases (offline files, read back with tests/tracking/wandb_files.py) from the
cluster drivers, with the runner's mapping: one W&B run per trial, group = the sweep,
job_type = the configuration, the trial's parameters as config, every iteration logged
with the timesteps as the step, the checkpoint path in the summary and exit code 0 once
the trial succeeds; the files land beside the trial's run directory (the sweep's run
directory). By the operator (a real `rlops operator` on the Kubernetes test bed, progress
POSTed as the runtime sends it) and by the SLURM bridge (real SLURM, the fake runtime in
the batch job, records read from progress.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlops.api.runinfo import read_progress
from tests.kube.fixtures import KubeTestBed
from tests.operator.harness import OperatorProcess
from tests.slurm.conftest import cli_client, slurm_cluster, slurm_settings
from tests.slurm.fake_runtime import fake_python
from tests.slurm.test_bridge import World, cartpole, world
from tests.tracking.kube_trials import ITERATIONS, record, run_tracked_sweep
from tests.tracking.wandb_files import OfflineRun, offline_runs
from tests.waiting import wait_until

__all__ = ["cli_client", "slurm_cluster", "slurm_settings", "world"]


def finished_runs(directory: Path, count: int) -> dict[str, list[OfflineRun]] | None:
    """The offline runs under `directory` once `count` of them have ended (None before)."""
    try:
        runs = offline_runs(directory)
    except Exception:  # A file W&B is still writing may end mid-record.
        return None
    done = {name: files for name, files in runs.items() if files[-1].exit_code is not None}
    return done if len(done) == count else None


@pytest.mark.e2e
def test_a_sweep_on_kubernetes_is_tracked_in_wandb_by_the_operator(
    kube: KubeTestBed, kube_namespace: str, tmp_path: Path
) -> None:
    ns = kube_namespace
    operator = OperatorProcess(kube, ns, tmp_path)
    storage = tmp_path / "runs" / ns  # the operator's storage path: runs/<namespace>/<trial>
    try:
        operator.start()
        created = run_tracked_sweep(kube, ns, operator, {"wandb": {"project": "rlops-kube"}})
        ended = lambda: finished_runs(storage, 2)  # noqa: E731
        runs = wait_until(ended, 90, "two finished W&B runs", interval=0.5)
    finally:
        operator.stop()
    assert set(runs) == set(created) == {"kgrid-0", "kgrid-1"}
    for name, files in runs.items():
        parameters: dict[str, Any] = json.loads(
            created[name]["metadata"]["annotations"]["rlops.dev/parameters"]
        )
        run = files[-1]
        assert (run.group, run.job_type) == ("kgrid", name)  # configurations: kgrid-<index>
        assert run.config["config.training.lr"] == parameters["config.training.lr"]
        assert {"sweep:kgrid", f"trial:{name}"} <= set(run.tags)
        lr = parameters["config.training.lr"]
        logged = [(h["_step"], h["episode_return_mean"]) for f in files for h in f.history]
        expected = [record(i, lr) for i in range(1, ITERATIONS + 1)]
        assert logged == [(r["timesteps"], r["episode_return_mean"]) for r in expected]
        assert run.summary["best_checkpoint"] == f"{storage}/{name}/checkpoints/000003"
        assert run.summary["phase"] == "Succeeded" and run.exit_code == 0


@pytest.mark.slurm
@pytest.mark.e2e
def test_a_slurm_trial_is_tracked_in_wandb_by_the_bridge(world: World, tmp_path: Path) -> None:
    builder = (
        cartpole("wgrid-1", python=str(fake_python(tmp_path)))
        .stop(iterations=3)
        .set("metadata.labels", {"rlops.dev/sweep": "wgrid", "rlops.dev/trial": "1"})
        .set("metadata.annotations", {"rlops.dev/parameters": json.dumps({"x": 2})})
        .set("spec.tracking", {"wandb": {"project": "rlops-bridge"}})
    )
    world.create(builder)
    bridge = world.bridge()
    world.poll_until(bridge, lambda: world.status("wgrid-1").get("phase") == "Succeeded", 120)
    run_dir = world.backend.settings.run_root / world.namespace / "wgrid-1"
    ended = lambda: finished_runs(run_dir.parent, 1)  # noqa: E731
    runs = wait_until(ended, 60, "the finished W&B run", interval=0.5)
    [files] = runs.values()
    run = files[-1]
    assert (run.name, run.group, run.job_type) == ("wgrid-1", "wgrid", "wgrid-1")
    assert run.config["x"] == 2
    logged = [(h["_step"], h["episode_return_mean"]) for f in files for h in f.history]
    progress = read_progress(run_dir)
    assert len(progress) == 3
    assert logged == [(p.timesteps, p.episode_return_mean) for p in progress]
    assert run.summary["best_checkpoint"] == f"{run_dir}/checkpoints/iteration-000003"
    assert run.summary["phase"] == "Succeeded" and run.exit_code == 0
