"""How long one /metrics scrape takes with 1,000 and 10,000 experiments.

    .venv/bin/python bench/bench_metrics.py [--experiments 1000 10000] [--repeat 20]

Each experiment is a trial of one of 100-trial sweeps with progress, so a scrape
carries 3 series per experiment plus the per-sweep and per-namespace families.
Reports the median and p95 of a full HTTP GET of /metrics (what Prometheus waits
for) and of the exposition alone, against the 100 ms target at 1,000 experiments.

`--json PATH` writes these figures as one object (bench/figures.py adds `machine`):
scrapes (experiments, get_p50_ms, get_p95_ms).
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from figures import add_json_argument, write_json

from rlops.api.experiment import Backend, Phase, Progress, RLExperimentStatus
from rlops.api.sweep import SweepPhase, SweepStatus, TrialCounts, TrialSummary
from rlops.metrics import RlopsMetrics, start_http_server

TARGET_MS = 100.0
PHASES = list(Phase)
BACKENDS = list(Backend)


def populate(metrics: RlopsMetrics, experiments: int, trials_per_sweep: int = 100) -> None:
    for i in range(experiments):
        sweep = f"sweep-{i // trials_per_sweep}"
        status = RLExperimentStatus(
            phase=PHASES[i % len(PHASES)],
            backend=BACKENDS[i % len(BACKENDS)],
            progress=Progress(
                iteration=i % 50, timesteps=4000 * (i % 50), episode_return_mean=i * 0.5
            ),
        )
        metrics.observe_experiment(f"ns-{i % 4}", f"{sweep}-{i % trials_per_sweep}", status, sweep)
    for s in range((experiments + trials_per_sweep - 1) // trials_per_sweep):
        metrics.observe_sweep(
            f"ns-{s % 4}",
            f"sweep-{s}",
            SweepStatus(
                phase=SweepPhase.RUNNING,
                trials=TrialCounts(total=100, pending=20, running=30, succeeded=40, failed=10),
                backends={"kubernetes": 60, "slurm": 40},
                best_trial=TrialSummary(name=f"sweep-{s}-7", objective=195.0),
            ),
        )


def timings_ms(action: Callable[[], object], repeat: int) -> list[float]:
    action()  # warm up
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


@dataclass
class Row:
    experiments: int
    series: int
    size: int
    get_ms: list[float]
    expose_ms: list[float]

    def line(self) -> str:
        return (
            f"{self.experiments:>11} {self.series:>7} {self.size:>9} "
            f"{statistics.median(self.get_ms):>7.1f}ms {p95(self.get_ms):>7.1f}ms "
            f"{statistics.median(self.expose_ms):>9.1f}ms"
        )


def measure(experiments: int, repeat: int) -> Row:
    metrics = RlopsMetrics()
    populate(metrics, experiments)
    server = start_http_server(metrics, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.port}/metrics"

    def scrape() -> bytes:
        with urllib.request.urlopen(url, timeout=30) as r:
            body: bytes = r.read()
        return body

    try:
        body = scrape()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        get = timings_ms(scrape, repeat)
        expose = timings_ms(metrics.exposition, repeat)
    finally:
        server.stop()
    return Row(experiments, series, len(body), get, expose)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--experiments", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=20)
    add_json_argument(parser)
    args = parser.parse_args()
    print(f"{'experiments':>11} {'series':>7} {'bytes':>9} {'GET p50':>9} {'GET p95':>9}", end="")
    print(f" {'render p50':>11}")
    rows = [measure(n, args.repeat) for n in args.experiments]
    for row in rows:
        print(row.line())
    write_json(
        args.json,
        "bench_metrics",
        {
            "scrapes": [
                {"experiments": r.experiments, "get_p50_ms": statistics.median(r.get_ms),
                 "get_p95_ms": p95(r.get_ms)}
                for r in rows
            ]
        },
    )  # fmt: skip
    at_1000 = [p95(r.get_ms) for r in rows if r.experiments == 1000]
    if not at_1000:
        return 0
    worst = at_1000[0]
    verdict = "meets" if worst < TARGET_MS else "MISSES"
    print(
        f"1,000 experiments: GET p95 {worst:.1f} ms {verdict} the {TARGET_MS:.0f} ms target", end=""
    )
    print(f" ({TARGET_MS / worst:.1f}x headroom)")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
