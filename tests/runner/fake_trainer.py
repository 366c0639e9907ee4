"""A stand-in for `python -m rlops.runtime`, for fast scheduler tests only.

It keeps the runtime's run-directory contract (progress.jsonl over attempts,
result.json, exit codes 0/1/75, SIGTERM -> exit 75, RLOPS_PAUSE_AT_ITERATION -> exit 75 with
stop reason `paused` after that iteration) without Ray: the "return" of an
iteration grows with the configured learning rate, so a sweep has a real ranking.
The real runtime trains in the end-to-end tests.

Knobs (in spec.environment.config): `fail_attempts` fails attempts up to that
number; `seconds_per_iteration` paces it (default 0.05).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

stop_signal = False


def on_term(signum: int, frame: object) -> None:
    global stop_signal
    stop_signal = True


def main() -> int:
    signal.signal(signal.SIGTERM, on_term)
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--attempt", type=int, required=True)
    parser.add_argument("--ray-address", default="")  # Recorded, not used.
    args = parser.parse_args()
    manifest = yaml.safe_load(args.spec.read_text())
    spec = manifest["spec"]
    env = spec["environment"].get("config", {})
    lr = float(spec.get("config", {}).get("training", {}).get("lr", 0.001))
    seed = int(spec.get("seed") or 0)
    stop = spec["stop"]
    budget = stop.get("iterations") or stop.get("timesteps", 1000) // 100
    run_dir: Path = args.run_dir
    progress = run_dir / "progress.jsonl"
    done = len(progress.read_text().splitlines()) if progress.exists() else 0
    (run_dir / f"env-{args.attempt}.json").write_text(
        json.dumps(
            {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")}
            | {"ray_address": args.ray_address}
        )
    )

    pause_at = int(os.environ.get("RLOPS_PAUSE_AT_ITERATION") or 0) or None

    def result(
        status: str,
        code: int,
        iteration: int,
        ret: float | None,
        reason: str | None = None,
        extra: dict[str, object] | None = None,
    ) -> int:
        body: dict[str, object] = {
            "status": status,
            "exit_code": code,
            "message": status,
            "stop_reason": reason,
            "iteration": iteration,
            "timesteps": iteration * 100,
            "episode_return_mean": ret,
            "attempt": args.attempt,
            **(extra or {}),
        }
        tmp = run_dir / ".result.tmp"
        tmp.write_text(json.dumps(body))
        os.replace(tmp, run_dir / "result.json")
        return code

    if args.attempt <= int(env.get("fail_attempts", 0)):
        return result("failed", 1, done, None)
    ret = None
    for iteration in range(done + 1, budget + 1):
        if stop_signal:
            return result("requeue", 75, iteration - 1, ret)
        if pause_at is not None and iteration - 1 >= pause_at:
            return result("requeue", 75, iteration - 1, ret, "paused")
        time.sleep(float(env.get("seconds_per_iteration", 0.05)))
        ret = 10.0 + 1000.0 * lr * iteration + (seed % 3)
        record = {
            "iteration": iteration,
            "timesteps": iteration * 100,
            "episode_return_mean": ret,
            "time_seconds": iteration * 0.05,
            "timestamp": time.time(),
            "attempt": args.attempt,
        }
        with progress.open("a") as f:
            f.write(json.dumps(record) + "\n")
    if stop_signal:
        return result("requeue", 75, budget, ret)
    # As the runtime ends a run that met its goal: the best return (returns only grow here)
    # and the final checkpoint, relative to the run directory.
    checkpoint = f"checkpoints/iteration-{budget:06d}"
    (run_dir / checkpoint).mkdir(parents=True, exist_ok=True)
    extra = {"best_episode_return_mean": ret, "best_checkpoint": checkpoint,
             "last_checkpoint": checkpoint}  # fmt: skip
    return result("succeeded", 0, budget, ret, None, extra)


if __name__ == "__main__":
    sys.exit(main())
