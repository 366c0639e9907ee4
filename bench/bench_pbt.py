"""rlops PBT against Ray Tune's PopulationBasedTraining, and against random search.

    .venv/bin/python bench/bench_pbt.py [--population 4] [--timesteps 12000]
        [--parallelism 2] [--goal 200] [--seeds 0 1 2] [--interval 3]

Three arms per search seed, in one run, all PPO on CartPole-v1 with no remote env
runners and 500-step batches, the same population (`maxTrials` / Tune's `num_samples`),
the same budget per trial (env steps) and the same parallelism:

- rlops PBT: `rlops run` of a Sweep with `algorithm: pbt` (`perturbationInterval`
  iterations, quantileFraction 0.25, resampleProbability 0.25), checkpoints every
  iteration;
- Tune PBT: `tune.Tuner("PPO")` with `PopulationBasedTraining` over the same
  distributions, the same interval (in training iterations), fraction and probability;
- random search: `rlops run` of the same Sweep with `algorithm: random`.

The search space is PPO's learning rate, log-uniform over 1e-5..1e-2, and its entropy
coefficient, uniform over 0..0.02. No arm stops at a goal: every trial trains its budget.

Figures: per arm and summed over the seeds, the wall time, the best return (the best
trial's last reported mean return: Tune's `get_best_result(scope="last")`, rlops's
leaderboard), and the env steps all trials had sampled when one first reported a mean
return at or above `--goal` (rlops arms; read from progress.jsonl). Targets: rlops PBT at
most 1.0x Tune's wall time with a best return at least Tune's, and fewer env steps to the
goal than random search.

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`):
seeds, population, timesteps, parallelism, goal, wall_seconds (rlops_pbt, tune_pbt,
random), wall_ratio_rlops_tune, best_return (per arm, per seed), steps_until_goal
(rlops_pbt, random, per seed), exploits (rlops PBT, per seed), tune_errored_trials (per
seed). `--arms` runs some arms only; `--tune-keep N` sets Tune's num_to_keep (default 2, as
rlops keeps; 0 keeps every checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from figures import add_json_argument, write_json

PPO = {"train_batch_size_per_learner": 500, "minibatch_size": 128, "num_epochs": 6}
LR = (1e-5, 1e-2)
ENTROPY = (0.0, 0.02)
METRIC = "env_runners/episode_return_mean"
QUANTILE, RESAMPLE = 0.25, 0.25
ARMS = ("rlops_pbt", "tune_pbt", "random")


def sweep(args: argparse.Namespace, seed: int, algorithm: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {
            "algorithm": "PPO",
            "environment": {"id": "CartPole-v1"},
            "config": {"training": dict(PPO)},
            "resources": {"envRunners": 0},
            "stop": {"timesteps": args.timesteps},
            "checkpoint": {"frequency": 1, "keep": 2},
            "seed": 1,
        },
        "parameters": {
            "config.training.lr": {"type": "loguniform", "low": LR[0], "high": LR[1]},
            "config.training.entropy_coeff": {
                "type": "uniform", "low": ENTROPY[0], "high": ENTROPY[1],
            },
        },
        "algorithm": algorithm,
        "seed": seed,
        "maxTrials": args.population,
        "parallelism": args.parallelism,
        "objective": {"metric": "episode_return_mean", "mode": "max"},
    }  # fmt: skip
    if algorithm == "pbt":
        spec["pbt"] = {
            "perturbationInterval": args.interval,
            "quantileFraction": QUANTILE,
            "resampleProbability": RESAMPLE,
        }
    name = f"bench-{algorithm}"
    return {"apiVersion": "rlops.dev/v1alpha1", "kind": "Sweep", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def steps_to_goal(root: Path, results: dict[str, Any], goal: float) -> int | None:
    """Env steps all trials had sampled when the first one reported a return >= goal."""
    curves = []
    for t in results["trials"]:
        path = root / results["sweep"] / "trials" / t["name"] / "progress.jsonl"
        curves.append([json.loads(x) for x in path.read_text().splitlines()] if path.exists()
                      else [])  # fmt: skip
    reached = [r["timestamp"] for c in curves for r in c
               if (r.get("episode_return_mean") or 0) >= goal]  # fmt: skip
    if not reached:
        return None
    first = min(reached)
    return sum(max((r["timesteps"] for r in c if r["timestamp"] <= first), default=0)
               for c in curves)  # fmt: skip


def rlops_arm(args: argparse.Namespace, seed: int, algorithm: str) -> dict[str, Any]:
    body = sweep(args, seed, algorithm)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        file = root / "sweep.yaml"
        file.write_text(yaml.safe_dump(body))
        rlops = str(Path(sys.executable).with_name("rlops"))
        command = [rlops, "run", str(file), "--root", str(root / "runs"),
                   "--cpus", str(args.parallelism), "--quiet", "--no-report"]  # fmt: skip
        start = time.perf_counter()
        # Exploits resume trials: forked from the warm launcher unless --cold.
        env = {**os.environ, "RLOPS_WARM_WORKERS": "false" if args.cold else "true"}
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, env=env)
        wall = time.perf_counter() - start
        results = json.loads(
            (root / "runs" / body["metadata"]["name"] / "results.json").read_text()
        )
        best = results["leaderboard"][0]["objective"] if results["leaderboard"] else float("nan")
        return {
            "wall": wall,
            "best": best,
            "steps_to_goal": steps_to_goal(root / "runs", results, args.goal),
            "exploits": sum(len(t["exploits"]) for t in results["trials"]),
        }


def tune_arm(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    import ray
    from ray import tune
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.schedulers import PopulationBasedTraining

    random.seed(seed)  # Tune's PBT draws from the `random` module
    ray.init(num_cpus=args.parallelism, include_dashboard=False, log_to_driver=False)
    try:
        config = (
            PPOConfig()
            .environment("CartPole-v1")
            .env_runners(num_env_runners=0)
            .training(lr=tune.loguniform(*LR), entropy_coeff=tune.uniform(*ENTROPY), **PPO)
            .debugging(seed=1)
        )
        scheduler = PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=args.interval,
            quantile_fraction=QUANTILE,
            resample_probability=RESAMPLE,
            hyperparam_mutations={"lr": tune.loguniform(*LR),
                                  "entropy_coeff": tune.uniform(*ENTROPY)},
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            tuner = tune.Tuner(
                "PPO",
                param_space=config,
                tune_config=tune.TuneConfig(
                    metric=METRIC, mode="max", scheduler=scheduler,
                    num_samples=args.population, max_concurrent_trials=args.parallelism,
                ),
                run_config=tune.RunConfig(
                    stop={"num_env_steps_sampled_lifetime": args.timesteps},
                    storage_path=tmp,
                    verbose=0,
                    checkpoint_config=tune.CheckpointConfig(
                        checkpoint_frequency=args.interval, num_to_keep=args.tune_keep or None
                    ),
                ),
            )  # fmt: skip
            results = tuner.fit()
            best = results.get_best_result(metric=METRIC, mode="max", scope="last")
            objective = float(best.metrics["env_runners"]["episode_return_mean"])
            errored = sum(1 for r in results if r.error is not None)
    finally:
        ray.shutdown()
    return {"wall": time.perf_counter() - start, "best": objective, "errored_trials": errored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=12_000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--interval", type=int, default=3)
    parser.add_argument("--goal", type=float, default=200.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument(
        "--cold", action="store_true",
        help="rlops launches a new Python per trial launch (RLOPS_WARM_WORKERS=false)",
    )  # fmt: skip
    parser.add_argument(
        "--tune-keep", type=int, default=2,
        help="Tune's num_to_keep (0: keep every checkpoint); rlops keeps 2",
    )  # fmt: skip
    add_json_argument(parser)
    args = parser.parse_args()
    print(
        f"PPO CartPole-v1, population {args.population}, {args.timesteps} env steps per trial, "
        f"parallelism {args.parallelism}, interval {args.interval}, goal {args.goal:g}, "
        f"seeds {args.seeds}",
        flush=True,
    )
    arms = tuple(args.arms)
    per_seed: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    for seed in args.seeds:
        for arm in arms:
            if arm == "tune_pbt":
                figures = tune_arm(args, seed)
            else:
                figures = rlops_arm(args, seed, "pbt" if arm == "rlops_pbt" else "random")
            per_seed[arm].append(figures)
            shown = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in figures.items())  # fmt: skip
            print(f"seed {seed} {arm:9s}: {shown}", flush=True)
    wall = {arm: sum(f["wall"] for f in per_seed[arm]) for arm in arms}
    best = {arm: [f["best"] for f in per_seed[arm]] for arm in arms}
    steps = {arm: [f["steps_to_goal"] for f in per_seed[arm]] for arm in arms if arm != "tune_pbt"}
    print("wall time over the seeds: " + ", ".join(f"{a} {wall[a]:.0f} s" for a in arms))
    print("best return per seed: " + "; ".join(
        f"{a} " + " ".join(f"{b:.1f}" for b in best[a]) for a in arms))  # fmt: skip
    print(f"env steps to return {args.goal:g} (None: not reached): {steps}")
    figures: dict[str, Any] = {
        "seeds": args.seeds, "population": args.population, "timesteps": args.timesteps,
        "parallelism": args.parallelism, "goal": args.goal, "wall_seconds": wall,
        "best_return": best, "steps_until_goal": steps,
    }  # fmt: skip
    if "rlops_pbt" in arms:
        figures["exploits"] = [f["exploits"] for f in per_seed["rlops_pbt"]]
    if "tune_pbt" in arms:
        figures["tune_errored_trials"] = [f["errored_trials"] for f in per_seed["tune_pbt"]]
    if {"rlops_pbt", "tune_pbt"} <= set(arms):
        figures["wall_ratio_rlops_tune"] = wall["rlops_pbt"] / wall["tune_pbt"]
        print(f"wall time rlops PBT / Tune PBT: {figures['wall_ratio_rlops_tune']:.2f}x "
              "(target <= 1.0x)")  # fmt: skip
    write_json(args.json, "bench_pbt", figures)


if __name__ == "__main__":
    main()
