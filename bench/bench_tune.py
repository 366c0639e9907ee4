"""`rlops run` (local sweep) against Ray Tune's Tuner on this machine: the same search
space, the same budget per trial and the same parallelism. Prints both wall times, their
ratio, and the best objective each found.

    .venv/bin/python bench/bench_tune.py [--lrs 0.0001 0.0003 0.001 0.003]
        [--timesteps 4000] [--parallelism 2] [--seed 1] [--isolated-too]

Both arms train PPO on CartPole-v1 with no remote env runners, 500-step batches, one
seed, and stop at the same timesteps. rlops starts one process per trial (so that each
trial can be resumed, stopped and packed on its own), all connected to one Ray head the
run starts; Tune runs every trial as an actor of one Ray instance. What the figure
measures is the price of a process per trial for small trials. `--isolated-too` adds
an arm with `rlops run --isolated-ray` (each trial starts a Ray of its own).

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`):
wall_seconds (rlops, tune), wall_ratio_rlops_tune, best_return (rlops, tune).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from figures import add_json_argument, write_json

ROOT = Path(__file__).resolve().parents[1]
PPO = {"train_batch_size_per_learner": 500, "minibatch_size": 128, "num_epochs": 6}
METRIC = "env_runners/episode_return_mean"


def sweep_manifest(lrs: list[float], timesteps: int, parallelism: int, seed: int) -> dict[str, Any]:
    """The rlops arm's Sweep: a grid over the learning rates."""
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "Sweep",
        "metadata": {"name": "bench-tune"},
        "spec": {
            "template": {
                "algorithm": "PPO",
                "environment": {"id": "CartPole-v1"},
                "config": {"training": dict(PPO)},
                "resources": {"envRunners": 0},
                "stop": {"timesteps": timesteps},
                "seed": seed,
            },
            "parameters": {"config.training.lr": {"type": "grid", "values": lrs}},
            "parallelism": parallelism,
        },
    }


def rlops_command(file: Path, root: Path, parallelism: int, *flags: str) -> list[str]:
    """`rlops run` of the Sweep in `file` on `parallelism` CPUs."""
    return [
        str(Path(sys.executable).with_name("rlops")),
        "run",
        str(file),
        "--root",
        str(root),
        "--cpus",
        str(parallelism),
        "--quiet",
        "--no-report",
        *flags,
    ]


def rlops_arm(
    lrs: list[float], timesteps: int, parallelism: int, seed: int, *flags: str
) -> tuple[float, float]:
    manifest = sweep_manifest(lrs, timesteps, parallelism, seed)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "sweep.yaml"
        file.write_text(yaml.safe_dump(manifest))
        command = rlops_command(file, Path(tmp) / "runs", parallelism, *flags)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        rows = list(csv.DictReader((Path(tmp) / "runs" / "bench-tune" / "leaderboard.csv").open()))
    return wall, float(rows[0]["mean_episode_return_mean"])


def tune_arm(lrs: list[float], timesteps: int, parallelism: int, seed: int) -> tuple[float, float]:
    start = time.perf_counter()
    import ray

    ray.init(num_cpus=parallelism, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = tune_fit(lrs, timesteps, parallelism, seed, tmp)
            best = results.get_best_result(metric=METRIC, mode="max", scope="last")
            objective = float(best.metrics["env_runners"]["episode_return_mean"])
    finally:
        ray.shutdown()
    return time.perf_counter() - start, objective


def tune_fit(lrs: list[float], timesteps: int, parallelism: int, seed: int, storage: str) -> Any:
    """The Tune arm's grid, fitted on the Ray this process has started; its ResultGrid."""
    from ray import tune
    from ray.rllib.algorithms.ppo import PPOConfig

    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .training(lr=tune.grid_search(lrs), **PPO)
        .debugging(seed=seed)
    )
    tuner = tune.Tuner(
        "PPO",
        param_space=config,
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", max_concurrent_trials=parallelism),
        run_config=tune.RunConfig(
            stop={"num_env_steps_sampled_lifetime": timesteps}, storage_path=storage, verbose=0
        ),
    )
    return tuner.fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.0001, 0.0003, 0.001, 0.003])
    parser.add_argument("--timesteps", type=int, default=4000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--isolated-too", action="store_true", help="Also run --isolated-ray.")
    add_json_argument(parser)
    args = parser.parse_args()
    arms = (args.lrs, args.timesteps, args.parallelism, args.seed)
    print(
        f"{len(args.lrs)} configurations x {args.timesteps} timesteps, parallelism "
        f"{args.parallelism}, PPO CartPole-v1"
    )
    rlops_wall, rlops_best = rlops_arm(*arms)
    print(f"rlops run : {rlops_wall:7.1f} s   best return {rlops_best:7.1f}", flush=True)
    if args.isolated_too:
        wall, best = rlops_arm(*arms, "--isolated-ray")
        print(f"--isolated-ray: {wall:7.1f} s   best return {best:7.1f}", flush=True)
    tune_wall, tune_best = tune_arm(*arms)
    print(f"Ray Tune  : {tune_wall:7.1f} s   best return {tune_best:7.1f}")
    print(
        f"wall time ratio rlops/Tune: {rlops_wall / tune_wall:.2f}x; "
        f"best return rlops {rlops_best:.1f} vs Tune {tune_best:.1f}"
    )
    write_json(
        args.json,
        "bench_tune",
        {
            "wall_seconds": {"rlops": rlops_wall, "tune": tune_wall},
            "wall_ratio_rlops_tune": rlops_wall / tune_wall,
            "best_return": {"rlops": rlops_best, "tune": tune_best},
        },
    )


if __name__ == "__main__":
    main()
