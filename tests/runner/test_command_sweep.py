"""`rlops run` of a sweep whose trials train with a program of their own: the example
manifests/examples/command-sweep.yaml (tabular Q-learning, standard library only) run from
the repository's root as a user would. Every trial reaches the goal through the runtime's
stop criterion, the leaderboard ranks the configurations by their objective, the report is
written, and no Ray cluster is started for trials that need none. A Hydra-style program
gets its configuration as `key=value` arguments.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rlops.api.runinfo import read_progress, read_result
from rlops.runner.layout import SweepLayout
from tests.builders import experiment, sweep
from tests.conftest import EXAMPLES, ROOT
from tests.slurm.slurm_cluster import missing_binaries, running_cluster

RLOPS = str(Path(sys.executable).with_name("rlops"))


def rlops_run(
    file: Path, root: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RLOPS, "run", str(file), "--root", str(root), "--cpus", "2", "-q", *extra],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
    )  # fmt: skip


def test_the_command_sweep_example_reaches_the_goal_in_every_trial(tmp_path: Path) -> None:
    done = rlops_run(EXAMPLES / "command-sweep.yaml", tmp_path / "runs")
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(tmp_path / "runs" / "tabular-q")
    names = layout.trial_names()
    assert names == [f"tabular-q-{i}-s{s}" for i in range(2) for s in range(2)]
    goal = yaml.safe_load((EXAMPLES / "command-sweep.yaml").read_text())["spec"]["template"][
        "stop"
    ]["episodeReturnMean"]
    means: dict[str, float] = {}
    for name in names:
        result = read_result(layout.trial(name))
        assert result is not None and result.status == "succeeded", result
        assert result.stop_reason == "episode_return_mean"
        assert result.episode_return_mean is not None and result.episode_return_mean >= goal
        progress = read_progress(layout.trial(name))
        assert progress[0].episode_return_mean is not None
        assert progress[0].episode_return_mean < goal  # it learned: the first iteration is below
        config = json.loads((layout.trial(name) / "config.json").read_text())
        assert config["alpha"] in (0.02, 0.5)
        configuration = name.rsplit("-s", 1)[0] + "-s0"
        means[configuration] = means.get(configuration, 0.0) + result.episode_return_mean / 2
    rows = list(csv.DictReader(layout.leaderboard.open()))
    assert [r["configuration"] for r in rows] == sorted(means, key=lambda n: (-means[n], n))
    assert (layout.report / "index.html").exists()
    assert (
        not (layout.root / "ray-head.log").exists()
        or "Ray head" not in (layout.root / "ray-head.log").read_text()
    )


def test_a_hydra_style_program_gets_its_config_as_overrides(tmp_path: Path) -> None:
    program = tmp_path / "train.py"
    program.write_text(
        textwrap.dedent(
            """
            import json, os, sys
            args = dict(a.split("=", 1) for a in sys.argv[1:])
            lr = float(args["optim.lr"])
            with open(os.environ["RLOPS_PROGRESS"], "a") as f:
                for i in range(1, 4):
                    ret = lr * 1000 * i
                    f.write(json.dumps({"iteration": i, "timesteps": 100 * i,
                                        "episode_return_mean": ret, "args": len(args)}) + "\\n")
            """
        )
    )
    template = experiment().command("python", "train.py", "{overrides}", "seed={seed}")
    template.set("spec.config", {"optim": {"lr": 0.001}, "model": "mlp"}).set("spec.seed", 0)
    manifest = (
        sweep("hydra")
        .set("spec.template", template.obj()["spec"])
        .param("config.optim.lr", "grid", values=[0.001, 0.002])
        .obj()
    )
    file = tmp_path / "hydra.yaml"
    file.write_text(yaml.safe_dump(manifest))
    done = rlops_run(file, tmp_path / "runs")
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(tmp_path / "runs" / "hydra")
    finals = {}
    for name in layout.trial_names():
        progress = read_progress(layout.trial(name))
        assert [p.iteration for p in progress] == [1, 2, 3]
        assert progress[-1].metrics["args"] == 3.0  # optim.lr, model and seed
        finals[name] = progress[-1].episode_return_mean
    assert sorted(finals.values()) == [3.0, 6.0]


@pytest.mark.slurm
def test_the_command_sweep_trains_as_slurm_jobs(tmp_path: Path) -> None:
    """The same example through `rlops run --backend slurm` on a real SLURM cluster: the
    batch script runs the runtime, which runs the program found from where rlops ran."""
    if missing_binaries() or os.geteuid() != 0:
        pytest.skip("needs SLURM's binaries and root (the test cluster's daemons run as root)")
    manifest = yaml.safe_load((EXAMPLES / "command-sweep.yaml").read_text())
    manifest["spec"]["placement"] = {"backend": "slurm", "slurm": {"cluster": "hpc"}}
    manifest["spec"]["seedsPerTrial"] = 1
    file = tmp_path / "command-sweep.yaml"
    file.write_text(yaml.safe_dump(manifest))
    root = Path(os.path.realpath(tmp_path)) / "runs"
    with running_cluster() as cluster:
        env = {**cluster.env, "RLOPS_SLURM_PYTHON": sys.executable, "RLOPS_POLL_SECONDS": "0.5"}
        done = rlops_run(file, root, "--backend", "slurm", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(root / "tabular-q")
    for name in layout.trial_names():
        run_dir = layout.trial(name)
        record = json.loads((run_dir / "trial.json").read_text())
        assert record["backend"] == "slurm"
        result = read_result(run_dir)
        assert result is not None and result.stop_reason == "episode_return_mean"
        assert result.runtime is not None and result.runtime.python == sys.executable
        (job,) = [launch["ref"] for launch in record["launches"]]
        assert "succeeded" in (run_dir / f"slurm-{job}.out").read_text()
