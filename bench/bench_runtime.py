"""The runtime's overhead: env steps per second of a plain RLlib loop against the rlops loop.

    .venv/bin/python bench/bench_runtime.py [--iterations 30] [--batch 1000]

Both arms drive one and the same PPO CartPole algorithm (driver-only sampling, local
learner) in one process and one Ray, taking turns:
- plain: `algo.train()` and nothing else (the loop `for _ in range(N): algo.train()`);
- rlops: the runtime's `Trainer.step()`: `algo.train()` plus a progress.jsonl line
  (fsynced), TensorBoard scalars for every numeric result, a progress POST to a
  loopback tracker (background thread), and checkpoints every `--checkpoint-every`
  of its iterations keeping the 2 best (by the default score) and the latest.
One algorithm, not two built alike: two copies drift apart in what they have learned
(their seeds draw from one global RNG), and the episode lengths of a better policy
change sampling speed by more than the bookkeeping costs.
The arms alternate iteration by iteration in ABBA order, so that load on a shared
machine and the policy's progress fall on both alike. Reported: env steps per second
of each arm (all steps over all wall time, and the median of the iterations, which
shrugs off bursts of other work on a shared machine) and per CPU second, and the
ratios rlops / plain (target >= 0.97). On a busy machine these still swing by more
than the bookkeeping costs, so the time the rlops arm spends outside `algo.train()`
(measured in the same iterations) is reported too, with the ratio it implies.

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`):
env_steps_per_s (plain, rlops), ratio_rlops_plain, ratio_rlops_plain_medians, bookkeeping_fraction.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from figures import add_json_argument, write_json

from rlops.api.experiment import RLExperiment
from rlops.api.runinfo import CHECKPOINT_DIR
from rlops.runtime.algo_config import build_config, register_environment
from rlops.runtime.checkpoints import CheckpointStore
from rlops.runtime.loop import Trainer, env_steps
from rlops.runtime.progress import ProgressLog
from rlops.runtime.reporter import ProgressReporter
from rlops.runtime.stopping import Totals

TARGET = 0.97


def manifest(batch: int, checkpoint_every: int) -> dict[str, Any]:
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "RLExperiment",
        "metadata": {"name": "bench-runtime"},
        "spec": {
            "algorithm": "PPO",
            "environment": {"id": "CartPole-v1"},
            "config": {
                "training": {"train_batch_size_per_learner": batch, "minibatch_size": 128,
                             "num_epochs": 6, "lr": 0.001},
                "rl_module": {"model_config": {"fcnet_hiddens": [64, 64]}},
            },
            "resources": {"envRunners": 0},
            "stop": {"iterations": 1_000_000},
            "checkpoint": {"frequency": checkpoint_every, "keep": 2},
            "seed": 1,
        },
    }  # fmt: skip


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _TimedTrain:
    """The algorithm as the rlops arm sees it: `train()` timed, all else passed through."""

    def __init__(self, algo: Any) -> None:
        self.algo = algo
        self.seconds = 0.0

    def train(self) -> Any:
        start = time.perf_counter()
        try:
            return self.algo.train()
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name: str) -> Any:
        return getattr(self.algo, name)


def measure(step: Callable[[], dict[str, Any]], iterations: int) -> tuple[int, float, float]:
    """Env steps, wall seconds and process CPU seconds of `iterations` steps."""
    steps = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        steps += env_steps(step())
    return steps, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="Iterations per arm.")
    parser.add_argument("--batch", type=int, default=1000, help="Env steps per iteration.")
    parser.add_argument("--checkpoint-every", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    spec = RLExperiment.model_validate(manifest(args.batch, args.checkpoint_every)).spec
    config = build_config(spec, register_environment(spec.environment))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        algo = config.build_algo()
        reporter = ProgressReporter(
            f"http://127.0.0.1:{server.server_port}/progress", "token", interval=2.0
        )
        log = ProgressLog(run_dir)
        timed = _TimedTrain(algo)
        trainer = Trainer(
            timed, spec, log, CheckpointStore(run_dir / CHECKPOINT_DIR, spec.checkpoint),
            Totals(), 1, reporter=reporter,
        )  # fmt: skip
        arms: dict[str, Callable[[], dict[str, Any]]] = {
            "plain": algo.train,
            "rlops": trainer.step,
        }
        for step in arms.values():  # warm-up: first iterations build caches
            measure(step, 2)
        timed.seconds = 0.0
        totals = {name: [0, 0.0, 0.0] for name in arms}
        rates_each: dict[str, list[float]] = {name: [] for name in arms}
        for i in range(args.iterations):
            order = ["plain", "rlops"] if i % 2 == 0 else ["rlops", "plain"]
            for name in order:
                steps, wall, cpu = measure(arms[name], 1)
                totals[name][0] += steps
                totals[name][1] += wall
                totals[name][2] += cpu
                rates_each[name].append(steps / wall)
            if (i + 1) % 6 == 0:
                rates = {n: t[0] / t[1] for n, t in totals.items()}
                print(f"after {i + 1} iterations each: plain {rates['plain']:.0f}, "
                      f"rlops {rates['rlops']:.0f} env steps/s", flush=True)  # fmt: skip
        checkpoints = len(list((run_dir / CHECKPOINT_DIR).glob("checkpoint_*")))
        reporter.close(None)
        log.close()
        algo.stop()
    server.shutdown()
    ray.shutdown()

    wall_rate = {n: t[0] / t[1] for n, t in totals.items()}
    cpu_rate = {n: t[0] / t[2] for n, t in totals.items()}
    ratio = wall_rate["rlops"] / wall_rate["plain"]
    overhead = 1 - timed.seconds / totals["rlops"][1]
    print(f"\nPPO CartPole, batch {args.batch}, {args.iterations} iterations per arm "
          f"(ABBA); load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"plain RLlib loop : {wall_rate['plain']:8.0f} env steps/s wall, "
          f"{cpu_rate['plain']:8.0f} per CPU second")  # fmt: skip
    print(f"rlops runtime    : {wall_rate['rlops']:8.0f} env steps/s wall, "
          f"{cpu_rate['rlops']:8.0f} per CPU second "
          f"({reporter.sent} progress POSTs, {checkpoints} checkpoints kept)")  # fmt: skip
    median = {n: statistics.median(r) for n, r in rates_each.items()}
    median_ratio = median["rlops"] / median["plain"]
    print(f"median iteration : plain {median['plain']:.0f}, rlops {median['rlops']:.0f} "
          "env steps/s")  # fmt: skip
    print(f"ratio rlops/plain: {ratio:.3f} over all iterations, {median_ratio:.3f} of the "
          f"medians, {cpu_rate['rlops'] / cpu_rate['plain']:.3f} per CPU second; target >= "
          f"{TARGET} -> {'met' if min(ratio, median_ratio) >= TARGET else 'NOT met'}")  # fmt: skip
    print(f"rlops bookkeeping: {overhead * 100:.2f}% of the rlops arm's wall time outside "
          f"algo.train() -> ratio {1 - overhead:.3f} at equal train() speed")  # fmt: skip
    write_json(
        args.json,
        "bench_runtime",
        {
            "env_steps_per_s": wall_rate,
            "ratio_rlops_plain": ratio,
            "ratio_rlops_plain_medians": median_ratio,
            "bookkeeping_fraction": overhead,
        },
    )


if __name__ == "__main__":
    main()
