"""Env steps to reach a CartPole goal: ASHA early stopping against full-budget random search.

    .venv/bin/python bench/bench_asha.py [--quick] [--trials 30] [--timesteps 100000]
        [--goal 475] [--parallelism 2] [--seeds 0 1 2 3] [--variant promotion|stopping]

Both arms are the same random search, run by `rlops run` with real PPO training: the
same `algorithm: random` and search seed, so the same configurations in the same order.
A trial stops when it reaches the goal return (or its budget), and the sweep ends once a
configuration has reached the goal. The ASHA arm adds `earlyStopping: {type: asha,
gracePeriod: 3, reductionFactor: 3, maxIterations: budget / batch}` (rungs at 3, 9, 27
and 81 of 200 iterations by default).

The defaults are CartPole-v1's own: the goal is its registered reward threshold (475;
195 is CartPole-v0's), and the budget, 100,000 env steps, is what rl-baselines3-zoo gives
PPO on CartPole. The search space is written the way a search over PPO is usually
specified when one does not yet know where the good region is: the learning rate
log-uniform over six decades (1e-7..1e-1) and the entropy coefficient log-uniform over
four (1e-4..1). Learning rates below about 1e-5 barely move the policy, those of a few
1e-2 and more stall or collapse, and an entropy coefficient of a few tenths or more holds
the policy near uniform. The full-budget arm pays every bad draw in full; ASHA stops most
of them at the first rung. How many of the configurations tried reached the goal is
printed per arm, so the figure can be read against it.

The return judged (by the goal and by ASHA alike) is the mean over the episodes that
ended in one iteration, as the runtime reports it.

Figures: env steps sampled by all trials up to the moment the goal was first reported
(the cost of finding a configuration that reaches it), and env steps sampled in all by
the time the sweep ended, per search seed and summed over the seeds (how lucky the
first draws are decides much of a single search). The target is >= 3x fewer steps until
the goal with ASHA.

Measured on 2 cores (every seed run is reported; env steps do not depend on load). The
ASHA arm ran the stopping variant (`--variant stopping`, the only one before rlops had a
Paused phase) in all but the last rows:

| variant, budget, parallelism, goal | seeds | steps until the goal, full / ASHA | steps in all |
|---|---|---|---|
| stopping, 20,000, 2, 195 | 0-3 | 159,500 / 88,500 = 1.80x (1.25, 1.98, 1.50, 1.00) | 2.17x |
| stopping, 40,000, 4, 195 | 0-3 | 171,000 / 74,000 = 2.31x (1.43, 3.03, 1.97, 1.11) | 3.29x |
| stopping, 40,000, 4, 195 | 4-7 | 260,500 / 142,500 = 1.83x (0.58, 0.94, 1.20, 4.10) | 2.28x |
| stopping, 40,000, 4, 450 | 0 (stopped) | 15,000 / 22,000 = 0.68x | 2.30x |
| stopping, 100,000, 2, 195 | 0-3 | 163,000 / 122,500 = 1.33x (1.20, 1.28, 1.88, 1.11) | 2.51x |
| stopping, 100,000, 2, 475 | 0-3 | 484,500 / 240,000 = 2.02x (1.36, 2.28, 1.50, 1.28) | 2.54x |
| stopping, 100,000, 2, 475 | 4-7 | 1,025,000 / 333,500 = 3.07x (1.34, 3.29, 1.44, 3.77) | 3.34x |
| stopping, 100,000, 2, 475 | 8-11 | 559,000 / 245,500 = 2.28x (2.96, 1.43, 1.41, 1.26) | 3.07x |
| promotion*, 100,000, 2, 475 | 0-3 | 478,000 / 220,000 = 2.17x (0.16, 7.98, 0.90, 0.43) | 2.83x |
| promotion, 100,000, 2, 475 | 0-11, one run | 2,080,000 / 519,000 = **4.01x** | 5.07x |

(*: an interrupted run, before pause points: the pause was asked once the rung was
reported, and trials ran one or two iterations past it; stopped during seed 4.)

The stopping variant, over the twelve seeds: 2,068,500 / 819,000 = 2.53x until the goal,
3.03x in all. It pays off only in searches whose first draws are bad (seeds 1, 5, 7 and
8: random search ran 4-6 configurations for their whole budget before one reached the
goal, 370,000-552,500 steps; 2.3-3.8x there); when one of the first two draws is good,
both arms find it at about the same moment (1.3-1.5x). In the bad searches the stopping
variant (as Ray Tune's and Optuna's ASHA) lets a trial that is first to reach a rung go
on, having no peer to be judged against: with two trials at a time the best of the bad
configurations drawn so far is that trial at every rung and runs its whole budget (seed
1: lr 4.9e-6 to 200 iterations and a return of 237; seed 7: lr 4.0e-6, 458; seed 8: lr
6.1e-3 with entropy 0.66, 236).

The promotion variant (the default here) pauses every trial at its rung and resumes only
the top third of those that reached it, so no bad configuration runs on for want of
peers. Over the twelve seeds, one run with both arms: 2,080,000 / 519,000 = 4.01x until
the goal (per seed 0.26, 16.80, 0.80, 0.94, 0.75, 23.55, 1.29, 23.35, 14.16, 1.15, 0.53,
0.77), 5.07x in all; wall time 2,221 s against 1,442 s. The total is carried by the bad
searches (seeds 1, 5, 7, 8: 14-24x, ASHA reaching the goal after 15,500-30,500 steps
where random search spent 365,000-560,500). When a good configuration is among the first
two draws, the promotion variant is slower than random search (0.26-0.94x on six seeds):
the good trial waits at rung 3, then at rung 9, until a third of its peers there are
worse, which takes a dozen new trials' first rungs. The median seed is about even; the
expected cost of reaching the goal, which the sum over seeds estimates, is 4x lower.
At 195, or with a budget close to how long a good configuration takes (20,000-40,000
steps), slow learners count as successes and the first rung (3 iterations) costs a
sizeable part of one, so ASHA gains less.

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`):
variant, seeds, goal_reached, steps_until_goal, steps_until_goal_ratio, steps_total_ratio,
wall_seconds.
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
from figures import add_json_argument, write_json

PPO = {"train_batch_size_per_learner": 500, "minibatch_size": 128, "num_epochs": 6}
SPACE = {
    "config.training.lr": {"type": "loguniform", "low": 1e-7, "high": 1e-1},
    "config.training.entropy_coeff": {"type": "loguniform", "low": 1e-4, "high": 1.0},
}
ASHA = {"type": "asha", "gracePeriod": 3, "reductionFactor": 3, "minTrials": 2}
VARIANTS = ("promotion", "stopping")
QUICK = {"trials": 20, "seeds": [0]}
Curve = list[dict[str, Any]]


def manifest(args: argparse.Namespace, seed: int, asha: bool) -> dict[str, Any]:
    """The Sweep of one arm; the arms differ only in `earlyStopping` (and name)."""
    spec: dict[str, Any] = {
        "template": {
            "algorithm": "PPO",
            "environment": {"id": "CartPole-v1"},
            "config": {"training": dict(PPO)},
            "resources": {"envRunners": 0},
            "stop": {"timesteps": args.timesteps, "episodeReturnMean": args.goal},
            "seed": 1,
        },
        "parameters": SPACE,
        "algorithm": "random",
        "seed": seed,
        "maxTrials": args.trials,
        "parallelism": args.parallelism,
        "objective": {"metric": "episode_return_mean", "mode": "max", "goal": args.goal},
    }
    if asha:
        iterations = args.timesteps // PPO["train_batch_size_per_learner"]
        spec["earlyStopping"] = {**ASHA, "variant": args.variant, "maxIterations": iterations}
    name = "bench-asha" if asha else "bench-random"
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "Sweep",
        "metadata": {"name": name},
        "spec": spec,
    }


def progress(run_dir: Path) -> Curve:
    path = run_dir / "progress.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def returns(curve: Curve) -> list[float]:
    return [r["episode_return_mean"] for r in curve if r.get("episode_return_mean") is not None]


def steps_until(curves: dict[str, Curve], horizon: float) -> int:
    """Env steps sampled by all trials up to `horizon` (a progress timestamp)."""
    return sum(
        max((r["timesteps"] for r in c if r["timestamp"] <= horizon), default=0)
        for c in curves.values()
    )


def run_arm(args: argparse.Namespace, seed: int, asha: bool, root: Path) -> dict[str, Any]:
    body = manifest(args, seed, asha)
    name = body["metadata"]["name"]
    file = root / f"{name}.yaml"
    file.write_text(yaml.safe_dump(body))
    rlops = str(Path(sys.executable).with_name("rlops"))
    command = [rlops, "run", str(file), "--root", str(root), "--cpus", str(args.parallelism)]
    start = time.perf_counter()
    subprocess.run([*command, "--quiet", "--no-report"], check=False, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    results = json.loads((root / name / "results.json").read_text())
    trials = results["trials"]
    curves = {t["name"]: progress(Path(t["runDir"])) for t in trials}
    reached = [
        r["timestamp"]
        for c in curves.values()
        for r in c
        if (r.get("episode_return_mean") or 0) >= args.goal
    ]
    first_goal = min(reached) if reached else None
    rows = []
    for t in trials:
        curve = curves[t["name"]]
        lr, ent = (t["parameters"][key] for key in SPACE)
        best = max(returns(curve), default=0.0)
        iteration = curve[-1]["iteration"] if curve else 0
        rows.append(f"lr {lr:.1e} ent {ent:.1e} {t['phase']:9s} it {iteration:2d} best {best:5.1f}")
    return {
        "wall": wall,
        "reached": first_goal is not None,
        "until_goal": steps_until(curves, first_goal if first_goal is not None else float("inf")),
        "total": steps_until(curves, float("inf")),
        "trials": len(trials),
        "stopped": [t["phase"] for t in trials].count("Stopped"),
        "goal_trials": sum(1 for c in curves.values() if max(returns(c), default=0) >= args.goal),
        "rows": rows,
    }


def report_arm(seed: int, label: str, arm: dict[str, Any]) -> None:
    print(
        f"seed {seed} {label:11s}: goal reached {arm['reached']}, steps until goal "
        f"{arm['until_goal']}, steps in all {arm['total']}, trials {arm['trials']} "
        f"({arm['stopped']} stopped early, {arm['goal_trials']} reached the goal), "
        f"wall {arm['wall']:.0f} s",
        flush=True,
    )
    for row in arm["rows"]:
        print(f"    {row}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"preset: {QUICK}")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--timesteps", type=int, default=100_000)
    parser.add_argument("--goal", type=float, default=475.0)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--variant", choices=VARIANTS, default=VARIANTS[0], help="ASHA's variant")
    add_json_argument(parser)
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    import rlops

    print(
        f"random search over {SPACE}, {args.trials} trials max, {args.timesteps} timesteps "
        f"each, PPO {PPO}, goal {args.goal:g}, parallelism {args.parallelism}, "
        f"ASHA {ASHA} variant {args.variant}, "
        f"search seeds {args.seeds}; rlops from {Path(rlops.__file__).parent}",
        flush=True,
    )
    labels = ("full budget", "ASHA")
    sums = {label: {"until_goal": 0, "total": 0, "reached": 0, "wall": 0.0} for label in labels}
    for seed in args.seeds:
        arms = {}
        with tempfile.TemporaryDirectory() as tmp:
            for label in labels:
                arm = run_arm(args, seed, label == "ASHA", Path(tmp))
                report_arm(seed, label, arm)
                arms[label] = arm
                for key in sums[label]:
                    sums[label][key] += arm[key]
        full, asha = arms["full budget"], arms["ASHA"]
        print(
            f"seed {seed}: steps until goal full/ASHA "
            f"{full['until_goal'] / max(asha['until_goal'], 1):.2f}x, steps in all "
            f"{full['total'] / max(asha['total'], 1):.2f}x",
            flush=True,
        )
    full_sum, asha_sum = sums["full budget"], sums["ASHA"]
    n = len(args.seeds)
    print(f"goal reached: full budget {full_sum['reached']}/{n}, ASHA {asha_sum['reached']}/{n}")
    print(
        f"over all seeds, env steps until the goal: full budget {full_sum['until_goal']}, "
        f"ASHA {asha_sum['until_goal']}, ratio "
        f"{full_sum['until_goal'] / max(asha_sum['until_goal'], 1):.2f}x (target >= 3x)"
    )
    print(
        f"over all seeds, env steps in all: full budget {full_sum['total']}, ASHA "
        f"{asha_sum['total']}, ratio {full_sum['total'] / max(asha_sum['total'], 1):.2f}x"
    )
    print(f"wall: full budget {full_sum['wall']:.0f} s, ASHA {asha_sum['wall']:.0f} s")
    write_json(
        args.json,
        "bench_asha",
        {
            "variant": args.variant,
            "seeds": args.seeds,
            "goal_reached": {"full_budget": full_sum["reached"], "asha": asha_sum["reached"]},
            "steps_until_goal": {
                "full_budget": full_sum["until_goal"],
                "asha": asha_sum["until_goal"],
            },
            "steps_until_goal_ratio": full_sum["until_goal"] / max(asha_sum["until_goal"], 1),
            "steps_total_ratio": full_sum["total"] / max(asha_sum["total"], 1),
            "wall_seconds": {"full_budget": full_sum["wall"], "asha": asha_sum["wall"]},
        },
    )


if __name__ == "__main__":
    main()
