"""`rlops run` end to end with the real runtime and real RLlib training on CartPole
(small budgets): a 4-configuration x 2-seed grid and its leaderboard, an ASHA sweep that
stops a bad learning rate early while its best trial reaches the goal, the same with
ASHA's promotion variant (trials paused at rungs, the best resumed from its checkpoint),
Ctrl-C and a second run that completes the sweep without re-running finished trials, and a single
experiment that a second run reports as done.

Every local run starts one Ray head that all its trials connect to: the tests check
that each run's trials name one cluster, that the runner has a single GCS below it
while trials train, that a trial crashing hard leaves the head serving the next
trial, and that no process of a run's head remains after the run, after Ctrl-C and
after a crash."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlops.runner.layout import SweepLayout
from tests.builders import experiment, sweep
from tests.waiting import wait_until

pytestmark = pytest.mark.training

RLOPS = str(Path(sys.executable).with_name("rlops"))
PPO_SMALL = {"train_batch_size_per_learner": 500, "minibatch_size": 128, "num_epochs": 6}


def cartpole_sweep(name: str, timesteps: int) -> Any:
    return (
        sweep(name)
        .template("config", {"training": dict(PPO_SMALL)})
        .template("stop", {"timesteps": timesteps})
        .template("seed", 1)
        .set("spec.parallelism", 2)
    )


def rlops_run(
    manifest: dict[str, Any], tmp_path: Path, *extra: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    file = tmp_path / f"{manifest['metadata']['name']}.yaml"
    file.write_text(yaml.safe_dump(manifest))
    return subprocess.run(
        [RLOPS, "run", str(file), "--root", str(tmp_path / "runs"), "--cpus", "2", "-q", *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def result_of(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def progress_of(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "progress.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def ray_clusters(run_dirs: list[Path]) -> set[str]:
    """The Ray cluster addresses the trials' attempt logs say they trained on."""
    found = set()
    for run_dir in run_dirs:
        for log in (run_dir / "attempts").glob("*.log"):
            found |= set(re.findall(r"^rlops: Ray cluster (\S+)$", log.read_text(), re.M))
    return found


def head_dirs(run_root: Path) -> list[str]:
    """The temporary directories of the Ray heads the runs in `run_root` started, in order."""
    text = (run_root / "ray-head.log").read_text()
    return re.findall(r"^rlops: Ray head \S+ .* in (\S+)$", text, re.M)


def processes_naming(text: str) -> list[str]:
    """Command lines of the live processes that mention `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and text in cmdline:
            found.append(cmdline)
    return found


def gcs_servers_below(pid: int) -> set[int]:
    """Process ids of the Ray GCS servers among the descendants of `pid`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    below = {pid}
    grew = True
    while grew:
        more = {child for child, parent in parents.items() if parent in below} - below
        below |= more
        grew = bool(more)
    servers = set()
    for child in below - {pid}:
        try:
            if (Path("/proc") / str(child) / "comm").read_text().strip() == "gcs_server":
                servers.add(child)
        except OSError:
            continue
    return servers


def assert_no_ray_left(run_root: Path) -> None:
    """No process of any head the runs in `run_root` started is alive (zombies have none)."""
    dirs = head_dirs(run_root)
    assert dirs
    wait_until(
        lambda: not any(processes_naming(d) for d in dirs), 10, f"the processes of {dirs} to end"
    )


def test_grid_sweep_of_four_configurations_two_seeds(tmp_path: Path) -> None:
    manifest = (
        cartpole_sweep("grid", timesteps=1000)
        .template("config.rl_module", {"model_config": {"fcnet_hiddens": [32, 32]}})
        .param("config.training.lr", "grid", values=[0.000001, 0.001])
        .param("config.rl_module.model_config.fcnet_hiddens.0", "grid", values=[16, 64])
        .set("spec.seedsPerTrial", 2)
        .obj()
    )
    done = rlops_run(manifest, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(tmp_path / "runs" / "grid")
    names = layout.trial_names()
    assert names == [f"grid-{i}-s{s}" for i in range(4) for s in range(2)]

    means: dict[str, float] = {}
    for i in range(4):
        objectives = []
        for s in range(2):
            result = result_of(layout.trial(f"grid-{i}-s{s}"))
            assert result is not None and result["status"] == "succeeded"
            assert result["timesteps"] >= 1000
            objectives.append(result["episode_return_mean"])
        means[f"grid-{i}-s0"] = sum(objectives) / 2
    rows = list(csv.DictReader(layout.leaderboard.open()))
    assert len(rows) == 4
    ranked = [r["configuration"] for r in rows]
    assert ranked == sorted(means, key=lambda n: (-means[n], n))
    for row in rows:
        assert float(row["mean_episode_return_mean"]) == pytest.approx(
            means[row["configuration"]], rel=1e-5
        )
    hidden = {r["configuration"]: r["config.rl_module.model_config.fcnet_hiddens.0"] for r in rows}
    spec = yaml.safe_load((layout.trial("grid-3-s1") / "spec.yaml").read_text())["spec"]
    assert spec["config"]["rl_module"]["model_config"]["fcnet_hiddens"] == [
        int(hidden["grid-3-s0"]),
        32,
    ]
    assert spec["seed"] == 2  # The template's seed plus the seed index.
    assert (layout.report / "index.html").exists()
    assert (layout.report / "learning_curves.png").exists()
    assert len(ray_clusters([layout.trial(n) for n in names])) == 1
    assert len(head_dirs(layout.root)) == 1
    assert_no_ray_left(layout.root)


def test_asha_stops_a_bad_learning_rate_and_the_best_reaches_the_goal(tmp_path: Path) -> None:
    # Verified: lr 1e-6 returns ~27 at iteration 3 where 1e-3 and 3e-4 return ~35-38; both
    # good rates pass 100 within 4000 steps (8 iterations), far above the goal of 60. The
    # budget is 16 iterations: on a quiet machine with a shared Ray head an iteration takes
    # well under a second, and a stop decided at rung 3 must land before the budget ends.
    # All three start together (parallelism 3), so lr 1e-6 meets a peer at rung 3 as soon
    # as either good rate gets there, however late one of them starts.
    manifest = (
        cartpole_sweep("asha", timesteps=8000)
        .param("config.training.lr", "grid", values=[0.000001, 0.001, 0.0003])
        .set("spec.objective", {"metric": "episode_return_mean", "mode": "max", "goal": 60})
        .set(
            "spec.earlyStopping",
            {
                "type": "asha",
                "gracePeriod": 3,
                "reductionFactor": 2,
                "minTrials": 2,
                "maxIterations": 16,
            },
        )
        .set("spec.parallelism", 3)
        .obj()
    )
    done = rlops_run(manifest, tmp_path, "--cpus", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(tmp_path / "runs" / "asha")
    results = json.loads(layout.results.read_text())
    trials = {t["name"]: t for t in results["trials"]}
    assert trials["asha-0"]["phase"] == "Stopped"
    stopped = progress_of(layout.trial("asha-0"))
    assert 3 <= stopped[-1]["iteration"] < 16
    assert result_of(layout.trial("asha-0"))["exit_code"] == 75  # type: ignore[index]
    assert results["status"]["phase"] == "Succeeded"
    assert "goal 60 reached" in results["status"]["message"]
    best = results["leaderboard"][0]
    assert best["name"] != "asha-0"
    assert best["objective"] >= 60
    assert result_of(layout.trial(best["best_trial"]))["episode_return_mean"] >= 60  # type: ignore[index]


def test_asha_promotion_pauses_at_rungs_and_resumes_only_the_best(tmp_path: Path) -> None:
    # The same rates as above (lr 1e-6 is far behind at iteration 3). Rungs at 3 and 9 of
    # 16. The first two pause at rung 3 with no third peer; once the third is created the
    # search is exhausted, so the best at a rung may go on: never lr 1e-6.
    manifest = (
        cartpole_sweep("promo", timesteps=8000)
        .param("config.training.lr", "grid", values=[0.000001, 0.001, 0.0003])
        .set("spec.objective", {"metric": "episode_return_mean", "mode": "max", "goal": 60})
        .set(
            "spec.earlyStopping",
            {
                "type": "asha",
                "variant": "promotion",
                "gracePeriod": 3,
                "reductionFactor": 3,
                "minTrials": 2,
                "maxIterations": 16,
            },
        )
        .obj()
    )
    done = rlops_run(manifest, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    layout = SweepLayout(tmp_path / "runs" / "promo")
    results = json.loads(layout.results.read_text())
    trials = {t["name"]: t for t in results["trials"]}
    assert results["status"]["phase"] == "Succeeded"
    assert results["status"]["trials"]["paused"] == 0
    # The bad rate paused at rung 3, was never promoted, and was stopped at the end.
    bad = trials["promo-0"]
    assert (bad["phase"], bad["promotions"]) == ("Stopped", 0)
    # It ended exactly at the rung: the runtime pauses itself there (its pause point).
    assert progress_of(layout.trial("promo-0"))[-1]["iteration"] == 3
    assert result_of(layout.trial("promo-0"))["stop_reason"] == "paused"  # type: ignore[index]
    # The best was paused at a rung and resumed from its checkpoint, in one run directory:
    # its iterations run 1..16 without starting over, one attempt, one launch per resume.
    best = results["leaderboard"][0]
    assert best["best_trial"] != "promo-0" and best["objective"] >= 60
    winner = trials[best["best_trial"]]
    assert (winner["phase"], winner["attempts"]) == ("Succeeded", 1)
    assert winner["promotions"] >= 1
    iterations = [r["iteration"] for r in progress_of(layout.trial(winner["name"]))]
    assert iterations == list(range(1, 17))
    launches = list((layout.trial(winner["name"]) / "attempts").glob("*.log"))
    assert len(launches) == winner["promotions"] + 1, launches


def test_ctrl_c_then_a_second_run_completes_without_rerunning(tmp_path: Path) -> None:
    manifest = (
        cartpole_sweep("resume", timesteps=1500)
        .param("config.training.lr", "grid", values=[0.001, 0.0003, 0.0001])
        .obj()
    )
    file = tmp_path / "resume.yaml"
    file.write_text(yaml.safe_dump(manifest))
    layout = SweepLayout(tmp_path / "runs" / "resume")
    command = [RLOPS, "run", str(file), "--root", str(tmp_path / "runs"), "--cpus", "2", "-q"]

    def finished() -> list[str]:
        return [
            n
            for n in layout.trial_names()
            if (r := result_of(layout.trial(n))) is not None and r["status"] == "succeeded"
        ]

    def one_more_training() -> bool:
        return any(
            progress_of(layout.trial(n)) for n in layout.trial_names() if n not in finished()
        )

    runner = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    servers: set[int] = set()

    def watched() -> bool:  # Every Ray GCS the runner ever has below it.
        servers.update(gcs_servers_below(runner.pid))
        return len(finished()) >= 1 and one_more_training()

    try:
        wait_until(watched, 300, "a finished trial")
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, output
    assert "run the same command again to resume" in output
    assert len(servers) == 1  # One head, not one Ray per trial.
    assert_no_ray_left(layout.root)
    kept = {n: (layout.trial(n) / "result.json").stat().st_mtime_ns for n in finished()}
    assert 1 <= len(kept) < 3

    second = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stdout + second.stderr
    results = json.loads(layout.results.read_text())
    assert [t["phase"] for t in results["trials"]] == ["Succeeded"] * 3
    for name, mtime in kept.items():
        assert (layout.trial(name) / "result.json").stat().st_mtime_ns == mtime
    resumed = [n for n in layout.trial_names() if n not in kept]
    for name in resumed:
        record = json.loads((layout.trial(name) / "trial.json").read_text())
        assert record["launches"][-1]["kind"] in ("resume", "start")
        assert result_of(layout.trial(name))["timesteps"] >= 1500  # type: ignore[index]
    assert len(head_dirs(layout.root)) == 2  # One head per run.
    assert_no_ray_left(layout.root)


CRASHING_ENV = """
import os

import gymnasium as gym


class CrashingCartPole(gym.Wrapper):
    \"\"\"CartPole whose process dies (os._exit) at step `crash_after` (0: never).\"\"\"

    def __init__(self, config):
        super().__init__(gym.make("CartPole-v1"))
        self.crash_after = int(config.get("crash_after", 0))
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.crash_after and self.steps >= self.crash_after:
            os._exit(3)
        return self.env.step(action)


def make(config):
    return CrashingCartPole(config)
"""


def test_a_crashing_trial_leaves_the_head_serving_the_others(tmp_path: Path) -> None:
    # Trial 0 dies hard in its first iteration (no result.json); trial 2 starts in its
    # slot only after that and must train on the same head.
    (tmp_path / "crashing_env.py").write_text(CRASHING_ENV)
    manifest = (
        cartpole_sweep("crash", timesteps=1000)
        .template("environment", {"entryPoint": "crashing_env:make"})
        .param("environment.config.crash_after", "grid", values=[300, 0, 100000])
        .obj()
    )
    file = tmp_path / "crash.yaml"
    file.write_text(yaml.safe_dump(manifest))
    done = subprocess.run(
        [RLOPS, "run", str(file), "--root", str(tmp_path / "runs"), "--cpus", "2", "-q"],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "RLOPS_PYTHONPATH": str(tmp_path)},
    )
    layout = SweepLayout(tmp_path / "runs" / "crash")
    phases = {t["name"]: t["phase"] for t in json.loads(layout.results.read_text())["trials"]}
    assert phases == {"crash-0": "Failed", "crash-1": "Succeeded", "crash-2": "Succeeded"}, (
        done.stdout + done.stderr
    )
    crashed = json.loads((layout.trial("crash-0") / "trial.json").read_text())["launches"]
    assert [launch["exitCode"] for launch in crashed] == [3]
    late = json.loads((layout.trial("crash-2") / "trial.json").read_text())["launches"]
    assert late[0]["startedAt"] >= crashed[0]["endedAt"]
    trials = [layout.trial(n) for n in ("crash-0", "crash-1", "crash-2")]
    assert len(ray_clusters(trials)) == 1
    assert len(ray_clusters(trials[:1])) == 1  # The crashed trial was connected to it.
    assert len(head_dirs(layout.root)) == 1
    assert_no_ray_left(layout.root)


def test_single_experiment_trains_then_says_it_is_done(tmp_path: Path) -> None:
    manifest = (
        experiment("solo")
        .config("training", **PPO_SMALL)
        .stop(timesteps=1000)
        .set("spec.seed", 3)
        .obj()
    )
    first = rlops_run(manifest, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    run_dir = tmp_path / "runs" / "solo"
    result = result_of(run_dir)
    assert result is not None and result["status"] == "succeeded"
    assert "solo: succeeded (timesteps)" in first.stdout
    assert f"timesteps {result['timesteps']}" in first.stdout
    assert (run_dir / "checkpoints").is_dir()
    mtime = (run_dir / "result.json").stat().st_mtime_ns

    second = rlops_run(manifest, tmp_path, timeout=60)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "solo already succeeded" in second.stdout
    assert (run_dir / "result.json").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in (run_dir / "attempts").iterdir()) == ["1.log"]
    assert os.path.exists(run_dir / "report" / "learning_curve.png")
