"""How long one sweep plan takes with 1,000 and 10,000 observed trials, and how big the status is.

    .venv/bin/python bench/bench_engine.py [--trials 1000 10000] [--repeat 20]

A driver calls `plan` on every reconcile, so its latency bounds how fast a large
sweep can be driven. Each case observes N trials of a sweep with parallelism 100:
N - 100 finished (succeeded, a few failed or stopped) and 100 under way, each with a
20-iteration history.
- steady: all 100 slots busy, nothing to create (the common reconcile);
- refill: 10 slots free, so 10 trials are created (TPE asks Optuna 10 times);
- +asha / +median: steady, with early stopping judging the 100 running trials.
- +promo: ASHA's promotion variant with 10 slots free: the 100 running trials are past
  their rung and paused, and the stopped trials are Paused at rung 9 instead, so the
  10 places go to promotions ranked among every trial that reached rung 9.
Reports the median CPU time of the process (which leaves out the time spent
waiting for a core on a shared machine; the load average is printed), the
wall-clock median, fastest and p95, and how the CPU time grew from the smallest N
("cpu x"; the trials are walked once per plan, so it grows at most linearly, and
less while fixed costs dominate). Every case but TPE is held against the 50 ms target at
10,000 trials. TPE rebuilds an Optuna study from at most the 256 most recent
finished configurations (and the active ones) whenever it has to create, then asks
once per new configuration: its refill is reported per new configuration. Then the
size of the status JSON at 20,000 trials against the 100 KiB limit.

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`):
plans (algorithm, case, trials, cpu_ms, wall_ms, p95_ms), status_bytes_at_20000.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from figures import add_json_argument, write_json

from rlops.api import Backend, Phase, SearchAlgorithm, Sweep, SweepSpec
from rlops.sweep import TrialState, plan
from rlops.sweep.space import axes, grid_point, random_point

TARGET_MS = 50.0
TARGET_STATUS_BYTES = 100 * 1024
PARALLELISM = 100


def sweep_spec(algorithm: str, early_stopping: str | None = None) -> SweepSpec:
    parameters: dict[str, object] = {
        "config.training.lr": {"type": "grid", "values": [1e-5 * 2**i for i in range(10)]},
        "config.training.gamma": {"type": "grid", "values": [0.9 + 0.01 * i for i in range(10)]},
        "config.training.lambda_": {"type": "grid", "values": [0.9 + 0.01 * i for i in range(10)]},
        "config.training.num_epochs": {"type": "grid", "values": list(range(1, 11))},
        "config.training.minibatch_size": {"type": "choice", "values": [32, 64, 128]},
    }
    if algorithm != "grid":
        parameters["config.training.lr"] = {"type": "loguniform", "low": 1e-5, "high": 1e-2}
        parameters["config.training.gamma"] = {"type": "uniform", "low": 0.9, "high": 0.999}
    spec: dict[str, object] = {
        "template": {
            "algorithm": "PPO",
            "environment": {"id": "CartPole-v1"},
            "stop": {"iterations": 100},
        },
        "parameters": parameters,
        "algorithm": algorithm,
        "maxTrials": 100_000,
        "parallelism": PARALLELISM,
    }
    if early_stopping == "promotion":
        spec["earlyStopping"] = {
            "type": "asha", "variant": "promotion", "gracePeriod": 1, "reductionFactor": 3
        }  # fmt: skip
    elif early_stopping:
        spec["earlyStopping"] = {"type": early_stopping, "gracePeriod": 1, "reductionFactor": 3}
    return Sweep.model_validate({"metadata": {"name": "bench"}, "spec": spec}).spec


def observed(spec: SweepSpec, n: int, free: int) -> list[TrialState]:
    """n trials: the last PARALLELISM - free under way, the rest finished."""
    rng = random.Random(n)
    space = axes(spec)
    rule = spec.early_stopping
    paused = rule is not None and rule.variant == "promotion"
    active_from = n - (PARALLELISM - free)
    trials = []
    for i in range(n):
        # The parameters the engine gave configuration i, so that TPE learns from all of them.
        if spec.algorithm == SearchAlgorithm.GRID:
            params = grid_point(space, i)
        else:
            params = random_point(spec, space, i)
        quality = rng.random()
        history = tuple((it, quality * it) for it in range(1, 21))
        if i >= active_from:
            phase, objective = Phase.RUNNING, None
        else:
            phase = rng.choices([Phase.SUCCEEDED, Phase.FAILED, Phase.STOPPED], [90, 5, 5])[0]
            objective = quality * 20 if phase != Phase.FAILED else None
            if paused and phase == Phase.STOPPED:
                phase, objective = Phase.PAUSED, None
        trials.append(
            TrialState(
                name=f"bench-{i}",
                index=i,
                seed_index=0,
                parameters=params,
                phase=phase,
                backend=Backend.KUBERNETES if i % 2 else Backend.SLURM,
                objective=objective,
                history=history,
                pause_requested=phase == Phase.PAUSED,
                promotions=2 if phase == Phase.PAUSED else 0,
            )
        )
    return trials


def timings_ms(action: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each run (CPU time leaves out waiting for a core)."""
    action()  # warm up
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--repeat", type=int, default=20)
    add_json_argument(parser)
    args = parser.parse_args()

    cases: list[tuple[str, str, str | None, int]] = [
        ("grid", "steady", None, 0),
        ("grid", "refill", None, 10),
        ("grid", "+asha", "asha", 0),
        ("grid", "+median", "median", 0),
        ("grid", "+promo", "promotion", 10),
        ("random", "steady", None, 0),
        ("random", "refill", None, 10),
        ("tpe", "steady", None, 0),
        ("tpe", "refill", None, 10),
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}")
    print(
        f"{'algorithm':<9} {'case':<7} {'trials':>7} {'cpu ms':>7} {'wall ms':>8} {'min ms':>7} "
        f"{'p95 ms':>7}  {'cpu x':>6}  target (median CPU time)"
    )
    first_cpu: dict[tuple[str, str], float] = {}
    rows: list[dict[str, Any]] = []
    for n in args.trials:
        for algorithm, case, rule, free in cases:
            spec = sweep_spec(algorithm, rule)
            trials = observed(spec, n, free)
            result = plan(spec, "bench", trials)
            if rule == "promotion":
                assert len(result.pause) == PARALLELISM - free and len(result.resume) == free
            else:
                assert len(result.create) == free, (case, len(result.create))
                assert rule is None or result.stop, f"{case}: early stopping stopped nobody"
            ms, cpu = timings_ms(lambda: plan(spec, "bench", trials), args.repeat)  # noqa: B023
            median_cpu = statistics.median(cpu)
            # How the CPU time grew from the smallest number of trials measured.
            growth = median_cpu / first_cpu.setdefault((algorithm, case), median_cpu)
            note = ""
            if n >= 10_000 and algorithm != "tpe":
                note = f"< {TARGET_MS:g} ms: {'ok' if median_cpu < TARGET_MS else 'OVER'}"
            elif algorithm == "tpe" and free:
                note = f"{median_cpu / free:.1f} ms per new configuration"
            wall = statistics.median(ms)
            row = {"algorithm": algorithm, "case": case, "trials": n, "cpu_ms": median_cpu}
            rows.append({**row, "wall_ms": wall, "p95_ms": p95(ms)})
            print(
                f"{algorithm:<9} {case:<7} {n:>7} {median_cpu:>7.1f} {statistics.median(ms):>8.1f} "
                f"{min(ms):>7.1f} {p95(ms):>7.1f}  {growth:>5.1f}x  {note}"
            )

    spec = sweep_spec("random")
    status = plan(spec, "bench", observed(spec, 20_000, 0)).status
    size = len(json.dumps(status.dump()).encode())
    verdict = "ok" if size < TARGET_STATUS_BYTES else "OVER"
    print(
        f"status JSON at 20000 trials: {size} bytes "
        f"({size / TARGET_STATUS_BYTES:.1%} of 100 KiB): {verdict}"
    )
    write_json(args.json, "bench_engine", {"plans": rows, "status_bytes_at_20000": size})


if __name__ == "__main__":
    main()
