"""SLURM commands per poll against the number of tracked jobs, sbatch calls per trial, and
submit-to-running latency, on a real single-node SLURM cluster (started here, as root).

    .venv/bin/python bench/bench_slurm.py [--jobs 1 10 100] [--latency-runs 5] [--json PATH]

Held jobs (`--hold`) stand for tracked experiments: SLURM keeps them without running
anything. Every command a client runs is counted through its observer; one poll of
`SlurmBackend.observe` must cost a constant number of commands whatever the number of
jobs: one `squeue`; plus one batched `sacct` when some ids are no longer held by
slurmctld (half of them here: ids it never had, as after MinJobAge); or one
`scontrol -o show job` alone when squeue is unusable (a bin_dir without squeue).
Submitting each experiment twice must still cost one sbatch (target: <= 1). A sweep round
through the runner's SLURM backend (`rlops run --backend slurm`) costs one sbatch per
array: 8 trials with parallelism 8 -> 0.125 per trial, against 1.00 with --no-slurm-array,
in the same run; a second runner adopting them costs none.

`--json PATH` writes: commands_per_poll (jobs, all_held, half_forgotten, squeue_unusable),
sbatch_per_trial_resubmitted, sweep_sbatch_per_trial (arrays, no-arrays),
submit_to_running_seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from figures import add_json_argument, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlops.api import RLExperiment
from rlops.api.experiment import BackendRef
from rlops.backends.base import Submission
from rlops.backends.slurm import CliSlurmClient, SlurmBackend, SlurmSettings
from rlops.backends.slurm.runs import SlurmRunBackend
from tests.builders import experiment
from tests.slurm.slurm_cluster import running_cluster


class Counter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, command: str, seconds: float, ok: bool) -> None:
        self.calls.append((command, seconds))

    def count(self, command: str) -> int:
        return sum(1 for c, _ in self.calls if c == command)


def held_script(i: int) -> str:
    return f"#!/bin/bash\n#SBATCH --job-name=bench-{i}\n#SBATCH --output=/dev/null\ntrue\n"


def without_squeue(settings: SlurmSettings, root: Path) -> SlurmSettings:
    """Settings whose bin_dir has the real commands but no squeue."""
    bin_dir = root / "bin-without-squeue"
    bin_dir.mkdir(exist_ok=True)
    for name in ("sbatch", "scontrol", "scancel", "sacct"):
        if not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(f"/usr/bin/{name}")
    return settings.model_copy(update={"bin_dir": bin_dir})


def per_poll(
    backend: SlurmBackend, counter: Counter, refs: list[BackendRef], held: int
) -> tuple[float, str]:
    """(commands per poll, a line saying which and how long)."""
    backend.observe(refs)  # the client finds out once which sacct and squeue work
    counter.calls.clear()
    polls = 5
    for _ in range(polls):
        seen = backend.observe(refs)
        assert len(seen) == held, f"saw {len(seen)} of {held} jobs"
    kinds = sorted({c for c, _ in counter.calls})
    ms = statistics.median(s for _, s in counter.calls) * 1000
    per = len(counter.calls) / polls
    return per, f"{per:.1f} ({'+'.join(kinds)}, {ms:.0f} ms each)"


def commands_per_poll(
    client: CliSlurmClient, counter: Counter, sizes: list[int], scratch: Path
) -> list[dict[str, Any]]:
    backend = SlurmBackend(client, client.settings)
    fallback = CliSlurmClient(without_squeue(client.settings, scratch), counter, client.env)
    backend_without_squeue = SlurmBackend(fallback, fallback.settings)
    print("tracked jobs | commands per poll: all held | half forgotten | squeue unusable")
    rows = []
    for n in sizes:
        job_ids = [client.submit(held_script(i), hold=True) for i in range(n)]
        refs = [BackendRef(kind="SlurmJob", cluster="bench", job_id=j) for j in job_ids]
        half = n // 2
        gone = [BackendRef(kind="SlurmJob", cluster="bench", job_id=str(9_000_000 + i))
                for i in range(half)]  # fmt: skip
        mixed = refs[: n - half] + gone
        held, held_line = per_poll(backend, counter, refs, n)
        mix, mix_line = per_poll(backend, counter, mixed, n - half)
        fallback_per, fallback_line = per_poll(backend_without_squeue, counter, refs, n)
        print(f"{n:12d} | {held_line} | {mix_line} | {fallback_line}")
        rows.append({"jobs": n, "all_held": held, "half_forgotten": mix,
                     "squeue_unusable": fallback_per})  # fmt: skip
        for ref in refs:
            client.cancel(ref.job_id or "")
    return rows


def sbatch_per_trial(client: CliSlurmClient, counter: Counter, settings: SlurmSettings) -> float:
    backend = SlurmBackend(client, settings)
    trials = 10
    counter.calls.clear()
    refs = []
    for i in range(trials):
        body = experiment(f"trial-{i}").slurm(extraDirectives=["--hold"]).obj()
        body["metadata"].update(namespace="bench", uid=f"{i:08d}-0000-0000-0000-000000000000")
        exp = RLExperiment.model_validate(body)
        run_dir = settings.run_root / "bench" / f"trial-{i}"
        first = backend.submit(exp, run_dir)
        again = backend.submit(exp, run_dir)  # a restarted driver submitting again
        assert first == again
        refs.append(first)
    per_trial = counter.count("sbatch") / trials
    print(f"sbatch calls per trial (each submitted twice): {per_trial:.2f}")
    for ref in refs:
        backend.cancel(ref)
    return per_trial


def sweep_round(settings: SlurmSettings, name: str, trials: int) -> list[Submission]:
    """One round of a sweep as the runner hands it over: held trials with equal directives."""
    requests = []
    for i in range(trials):
        run_dir = settings.run_root / name / "trials" / f"{name}-{i}"
        run_dir.mkdir(parents=True)
        body = experiment(f"{name}-{i}").slurm(extraDirectives=["--hold"]).obj()
        (run_dir / "spec.yaml").write_text(yaml.safe_dump(body))
        requests.append(Submission(RLExperiment.model_validate(body), 1, run_dir=run_dir))
    return requests


def sweep_sbatch_per_trial(
    client: CliSlurmClient, counter: Counter, settings: SlurmSettings, trials: int
) -> dict[str, float]:
    figures = {}
    for arrays, name in ((True, "arrays"), (False, "no-arrays")):
        requests = sweep_round(settings, name, trials)
        counter.calls.clear()
        runs = SlurmRunBackend(SlurmBackend(client, settings), arrays=arrays)
        refs = runs.submit_many(requests)
        submitted = counter.count("sbatch")
        counter.calls.clear()
        runs.observe([(r.experiment, None) for r in requests])
        polled = len(counter.calls)
        counter.calls.clear()
        again = SlurmRunBackend(SlurmBackend(client, settings), arrays=arrays)
        again.submit_many(requests)  # a second `rlops run` while they are queued
        label = "arrays" if arrays else "--no-slurm-array"
        print(
            f"sweep of {trials} trials (parallelism {trials}), {label}: "
            f"{submitted / trials:.3f} sbatch calls per trial, {polled} command(s) per poll, "
            f"{counter.count('sbatch')} sbatch on resume"
        )
        figures[name] = submitted / trials
        for request, ref in zip(requests, refs, strict=True):
            runs.cancel(request.experiment, ref if isinstance(ref, BackendRef) else None)
    return figures


def latency(client: CliSlurmClient, runs: int) -> float:
    waits = []
    for i in range(runs):
        started = time.monotonic()
        job = client.submit(held_script(i).replace("true", "sleep 2"))
        while True:
            state = client.jobs([job])[job].state
            if state != "PENDING":
                break
            time.sleep(0.05)
        waits.append(time.monotonic() - started)
        client.cancel(job)
    print(
        f"submit-to-running latency over {runs} jobs: median {statistics.median(waits):.2f} s, "
        f"max {max(waits):.2f} s (sbatch + scheduling + polling every 50 ms)"
    )
    return statistics.median(waits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--latency-runs", type=int, default=5)
    parser.add_argument("--sweep-trials", type=int, default=8)
    add_json_argument(parser)
    args = parser.parse_args()
    with running_cluster() as cluster:
        settings = SlurmSettings(run_root=cluster.root / "runs")
        counter = Counter()
        client = CliSlurmClient(settings, observer=counter, env=cluster.env)
        with tempfile.TemporaryDirectory() as scratch:
            polls = commands_per_poll(client, counter, args.jobs, Path(scratch))
        figures = {
            "commands_per_poll": polls,
            "sbatch_per_trial_resubmitted": sbatch_per_trial(client, counter, settings),
            "sweep_sbatch_per_trial": sweep_sbatch_per_trial(
                client, counter, settings, args.sweep_trials
            ),
            "submit_to_running_seconds": latency(client, args.latency_runs),
        }
    write_json(args.json, "bench_slurm", figures)


if __name__ == "__main__":
    main()
