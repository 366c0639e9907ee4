"""Env steps to reach a CartPole goal: ASHA early stopping against full-budget random search.

    .venv/bin/python bench/bench_asha.py [--trials 12] [--timesteps 10000] [--goal 150]
        [--parallelism 2] [--seeds 0 1 2 3]

Both arms are the same random search (`algorithm: random`, the same seed, so the same
learning rates in the same order, drawn log-uniformly from 1e-6..1e-2) run by
`rlops run` with real PPO training; a trial stops when it reaches the goal return, and the
sweep ends once a configuration has reached it. The ASHA arm adds
`earlyStopping: {type: asha, gracePeriod: 2, reductionFactor: 3}`.

Figures: env steps sampled by all trials up to the moment the goal was first reported
(the cost of finding a configuration that reaches it), and env steps sampled in all by
the time the sweep ended, per search seed and summed over the seeds (how lucky the
first draws are decides much of a single search). The target is >= 3x fewer steps with
ASHA.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

PPO = {"train_batch_size_per_learner": 500, "minibatch_size": 128, "num_epochs": 6}


def manifest(args: argparse.Namespace, asha: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {
            "algorithm": "PPO",
            "environment": {"id": "CartPole-v1"},
            "config": {"training": dict(PPO)},
            "resources": {"envRunners": 0},
            "stop": {"timesteps": args.timesteps, "episodeReturnMean": args.goal},
            "seed": 1,
        },
        "parameters": {"config.training.lr": {"type": "loguniform", "low": 1e-6, "high": 1e-2}},
        "algorithm": "random",
        "seed": args.seed,
        "maxTrials": args.trials,
        "parallelism": args.parallelism,
        "objective": {"metric": "episode_return_mean", "mode": "max", "goal": args.goal},
    }
    if asha:
        spec["earlyStopping"] = {
            "type": "asha",
            "gracePeriod": 2,
            "reductionFactor": 3,
            "minTrials": 2,
            "maxIterations": args.timesteps // PPO["train_batch_size_per_learner"],
        }
    name = "bench-asha" if asha else "bench-random"
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "Sweep",
        "metadata": {"name": name},
        "spec": spec,
    }


def progress(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "progress.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def run_arm(args: argparse.Namespace, asha: bool, root: Path) -> dict[str, Any]:
    body = manifest(args, asha)
    file = root / f"{body['metadata']['name']}.yaml"
    file.write_text(yaml.safe_dump(body))
    start = time.perf_counter()
    subprocess.run(
        [
            str(Path(sys.executable).with_name("rlops")),
            "run",
            str(file),
            "--root",
            str(root),
            "--cpus",
            str(args.parallelism),
            "--quiet",
            "--no-report",
        ],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    results = json.loads((root / body["metadata"]["name"] / "results.json").read_text())
    curves = {t["name"]: progress(Path(t["runDir"])) for t in results["trials"]}
    reached = [
        r["timestamp"]
        for c in curves.values()
        for r in c
        if (r.get("episode_return_mean") or 0) >= args.goal
    ]
    first_goal = min(reached) if reached else None
    horizon = first_goal if first_goal is not None else float("inf")
    until_goal = sum(
        max((r["timesteps"] for r in c if r["timestamp"] <= horizon), default=0)
        for c in curves.values()
    )
    total = sum(c[-1]["timesteps"] if c else 0 for c in curves.values())
    phases = [t["phase"] for t in results["trials"]]
    return {
        "wall": wall,
        "reached": first_goal is not None,
        "until_goal": until_goal,
        "total": total,
        "trials": len(phases),
        "stopped": phases.count("Stopped"),
        "best": results["leaderboard"][0]["objective"] if results["leaderboard"] else None,
        "lrs": [round(t["parameters"]["config.training.lr"], 7) for t in results["trials"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--timesteps", type=int, default=10000)
    parser.add_argument("--goal", type=float, default=150.0)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args()
    print(
        f"random search, {args.trials} trials max, {args.timesteps} timesteps each, goal "
        f"{args.goal:g}, parallelism {args.parallelism}, search seeds {args.seeds}"
    )
    sums = {"full budget": [0, 0, 0], "ASHA": [0, 0, 0]}  # until goal, in all, goals reached
    for seed in args.seeds:
        args.seed = seed
        with tempfile.TemporaryDirectory() as tmp:
            arms = {}
            for asha in (False, True):
                arm = run_arm(args, asha, Path(tmp))
                label = "ASHA" if asha else "full budget"
                arms[label] = arm
                print(
                    f"seed {seed} {label:12s}: goal reached {arm['reached']}, steps until goal "
                    f"{arm['until_goal']}, steps in all {arm['total']}, trials {arm['trials']} "
                    f"({arm['stopped']} stopped early), best {arm['best']}, "
                    f"wall {arm['wall']:.0f} s; lrs {arm['lrs']}",
                    flush=True,
                )
                sums[label][0] += arm["until_goal"]
                sums[label][1] += arm["total"]
                sums[label][2] += int(arm["reached"])
        full, asha_arm = arms["full budget"], arms["ASHA"]
        print(
            f"seed {seed}: steps until goal full/ASHA "
            f"{full['until_goal'] / max(asha_arm['until_goal'], 1):.2f}x, steps in all "
            f"{full['total'] / max(asha_arm['total'], 1):.2f}x",
            flush=True,
        )
    full_sum, asha_sum = sums["full budget"], sums["ASHA"]
    print(
        f"goal reached: full budget {full_sum[2]}/{len(args.seeds)}, "
        f"ASHA {asha_sum[2]}/{len(args.seeds)}"
    )
    print(
        f"over all seeds, env steps until the goal, full budget / ASHA: "
        f"{full_sum[0] / max(asha_sum[0], 1):.2f}x (target >= 3x)"
    )
    print(
        f"over all seeds, env steps in all, full budget / ASHA: "
        f"{full_sum[1] / max(asha_sum[1], 1):.2f}x"
    )


if __name__ == "__main__":
    main()
