"""Weights & Biases in offline mode for `rlops run` (the runner's fake trainer stands in for
RLlib; W&B's own offline run files are read back with tests/tracking/wandb_files.py): one
W&B run per trial with group = the sweep, job_type = the configuration, the parameters and
seed as config, sweep/trial/seed/configuration tags, every iteration logged with the
timesteps as the step, the checkpoint path and best return in the summary, exit code 0;
a retried attempt goes on in the same run (one run id)."""

from __future__ import annotations

from pathlib import Path

from rlops.api.runinfo import read_progress
from rlops.tracking.wandb import run_id
from tests.builders import sweep
from tests.runner.helpers import run_manifest
from tests.tracking.wandb_files import offline_runs


def test_a_sweep_in_wandb_offline_files(tmp_path: Path) -> None:
    manifest = (
        sweep("wgrid")
        .param("config.training.lr", "grid", values=[0.001, 0.1])
        .template("stop", {"iterations": 3})
        .template("environment", {"id": "CartPole-v1", "config": {"fail_attempts": 1}})
        .set("spec.maxAttempts", 2)
        .set("spec.parallelism", 2)
        .set("spec.tracking", {"wandb": {"project": "rlops-test"}})
        .obj()
    )
    outcome = run_manifest(manifest, tmp_path)
    assert outcome.code == 0, outcome.output
    runs = offline_runs(outcome.layout.root)  # default dir: the sweep's run directory
    assert set(runs) == {"wgrid-0", "wgrid-1"}
    for name, files in runs.items():
        record = outcome.record(name)
        assert len(record.launches) == 2  # failed once, retried
        assert {f.run_id for f in files} == {run_id(f"local/wgrid/{name}")}  # the same run
        run = files[-1]
        assert (run.group, run.job_type) == ("wgrid", f"wgrid-{record.index}")
        assert run.config["config.training.lr"] == record.parameters["config.training.lr"]
        assert run.config["seed"] == record.seed
        assert set(run.tags) == {
            f"trial:{name}", "sweep:wgrid", f"configuration:wgrid-{record.index}",
            f"seed:{record.seed}",
        }  # fmt: skip
        run_dir = outcome.layout.trial(name)
        logged = [(h["_step"], h["episode_return_mean"]) for f in files for h in f.history]
        assert logged == [(p.timesteps, p.episode_return_mean) for p in read_progress(run_dir)]
        assert run.summary["best_checkpoint"] == f"{run_dir}/checkpoints/iteration-000003"
        assert run.summary["phase"] == "Succeeded" and run.exit_code == 0
