"""Sweep efficiency: how much of a machine a sweep of many short trials spends training,
rlops against Ray Tune in one run, and what a trial launch costs before it trains.

    .venv/bin/python bench/bench_efficiency.py [--trials 16] [--timesteps 2000]
        [--parallelism 2] [--seed 1] [--arms warm cold tune]

Every arm trains the same grid of `--trials` PPO CartPole-v1 learning rates (bench_tune's
problem: no remote env runners, 500-step batches) to the same timesteps, `--parallelism`
trials at a time on `--parallelism` CPUs:
- warm: `rlops run` (trials forked by the run's warm launcher, imports done);
- cold: `rlops run` with RLOPS_WARM_WORKERS=false (a new Python per launch);
- tune: `tune.Tuner("PPO")` with `max_concurrent_trials` = parallelism, on a Ray it starts.

Sweep efficiency = the sum of the trials' training time (the `time_this_iter_s` of every
iteration they reported) / (the arm's wall time x CPUs), wall time from the command's start
(Ray's start included) to its end. 1.0 would be a machine that only ever trains. Target:
rlops (warm) at least Tune's, and at least 0.8.

Start-up per launch (rlops arms): from the launch (trial.json's `startedAt`) to the start of
its first iteration (that iteration's record time less its `time_this_iter_s`) — fork or
exec, imports, connecting to Ray and building the algorithm; `first_iteration_s` adds the
first iteration itself.

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`): trials,
timesteps, parallelism, wall_seconds, training_seconds and efficiency (per arm),
load_at_start_and_end (per arm: 1-minute load average), startup_seconds and
first_iteration_seconds (per rlops arm: median, mean, max, launches),
efficiency_ratio_warm_tune.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from bench_tune import rlops_command, sweep_manifest, tune_fit
from figures import add_json_argument, write_json


def launch_figures(trials: Path) -> tuple[float, list[float], list[float]]:
    """Training seconds of all trials under `trials`, and per launch the seconds from its
    start to its first iteration's start and end."""
    training, startup, first = 0.0, [], []
    for trial in sorted(p for p in trials.iterdir() if p.is_dir()):
        records = [json.loads(line) for line in (trial / "progress.jsonl").open() if line.strip()]
        iteration = {id(r): float(r["metrics"].get("time_this_iter_s", 0.0)) for r in records}
        training += sum(iteration.values())
        launches = json.loads((trial / "trial.json").read_text())["launches"]
        for launch in launches:
            mine = [r for r in records if r.get("attempt") == launch["attempt"]]
            if mine:
                began = float(mine[0]["timestamp"]) - iteration[id(mine[0])]
                startup.append(began - float(launch["startedAt"]))
                first.append(float(mine[0]["timestamp"]) - float(launch["startedAt"]))
    return training, startup, first


def rlops_arm(args: argparse.Namespace, lrs: list[float], warm: bool) -> dict[str, Any]:
    manifest = sweep_manifest(lrs, args.timesteps, args.parallelism, args.seed)
    env = {**os.environ, "RLOPS_WARM_WORKERS": "true" if warm else "false"}
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "sweep.yaml"
        file.write_text(yaml.safe_dump(manifest))
        root = Path(tmp) / "runs"
        start = time.perf_counter()
        command = rlops_command(file, root, args.parallelism)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        wall = time.perf_counter() - start
        training, startup, first = launch_figures(root / "bench-tune" / "trials")
    return {"wall": wall, "training": training, "startup": startup, "first": first}


def tune_arm(args: argparse.Namespace, lrs: list[float]) -> dict[str, Any]:
    start = time.perf_counter()
    import ray

    ray.init(num_cpus=args.parallelism, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = tune_fit(lrs, args.timesteps, args.parallelism, args.seed, tmp)
            training = sum(
                float(result.metrics_dataframe["time_this_iter_s"].sum()) for result in results
            )
    finally:
        ray.shutdown()
    return {"wall": time.perf_counter() - start, "training": training}


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": statistics.median(values), "mean": statistics.fmean(values),
            "max": max(values), "launches": len(values)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--timesteps", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arms", nargs="+", choices=("warm", "cold", "tune"),
                        default=["warm", "cold", "tune"])  # fmt: skip
    add_json_argument(parser)
    args = parser.parse_args()
    lrs = [round(1e-4 * (30 ** (i / max(1, args.trials - 1))), 7) for i in range(args.trials)]
    print(f"{args.trials} trials x {args.timesteps} timesteps on {args.parallelism} CPUs, "
          f"PPO CartPole-v1; load {os.getloadavg()}", flush=True)  # fmt: skip
    arms: dict[str, dict[str, Any]] = {}
    for arm in args.arms:
        load = os.getloadavg()[0]
        arms[arm] = tune_arm(args, lrs) if arm == "tune" else rlops_arm(args, lrs, arm == "warm")
        figures = arms[arm]
        figures["load"] = [round(load, 1), round(os.getloadavg()[0], 1)]
        figures["efficiency"] = figures["training"] / (figures["wall"] * args.parallelism)
        line = (f"{arm:5}: wall {figures['wall']:7.1f} s, training {figures['training']:7.1f} s, "
                f"efficiency {figures['efficiency']:.2f}, load {figures['load']}")  # fmt: skip
        if "startup" in figures:
            line += (f"; start-up per launch median {statistics.median(figures['startup']):.1f} s, "
                     f"to first iteration {statistics.median(figures['first']):.1f} s")  # fmt: skip
        print(line, flush=True)
    ratio = None
    if "warm" in arms and "tune" in arms:
        ratio = arms["warm"]["efficiency"] / arms["tune"]["efficiency"]
        print(f"efficiency warm/Tune: {ratio:.2f}x")
    write_json(
        args.json,
        "bench_efficiency",
        {
            "trials": args.trials,
            "timesteps": args.timesteps,
            "parallelism": args.parallelism,
            "wall_seconds": {k: v["wall"] for k, v in arms.items()},
            "training_seconds": {k: v["training"] for k, v in arms.items()},
            "efficiency": {k: v["efficiency"] for k, v in arms.items()},
            "load_at_start_and_end": {k: v["load"] for k, v in arms.items()},
            "startup_seconds": {
                k: summary(v["startup"]) for k, v in arms.items() if "startup" in v
            },
            "first_iteration_seconds": {
                k: summary(v["first"]) for k, v in arms.items() if "first" in v
            },
            "efficiency_ratio_warm_tune": ratio,
        },
    )


if __name__ == "__main__":
    main()
