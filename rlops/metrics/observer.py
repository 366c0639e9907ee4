"""Prometheus metrics of the operator, the SLURM bridge and `rlops run`.

One small observer, `RlopsMetrics`, over an injected registry: nothing is
registered at import time. Drivers tell it what they observed (an experiment's
status, a sweep's status, a SLURM poll); it keeps the latest rows per object in
plain dicts (rlops.metrics.state), so `forget_*` of a deleted object removes every
series it had, and a scrape of 10,000 experiments is a string join.

Trial counts of a sweep come in two families because a SweepStatus holds two
marginals (trials by phase, trials by backend), not their joint: each family sums
to the sweep's trial total on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rlops.api.experiment import RLExperimentStatus
from rlops.api.sweep import SweepStatus
from rlops.metrics.state import (
    ExperimentRows,
    Rows,
    Snapshot,
    StateCollector,
    experiment_rows,
    slurm_job_rows,
    sweep_rows,
)

__all__ = ["RlopsMetrics"]

_RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FINISHED_SERIES_SECONDS = 3600.0
_QUEUE_WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)


class RlopsMetrics:
    """What the operator, the bridge and the local runner observed, as Prometheus metrics."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
        finished_series_seconds: float | None = FINISHED_SERIES_SECONDS,
    ) -> None:
        """`finished_series_seconds`: an experiment's series are dropped this long after it
        finished (None: kept until it is deleted), so 20,000 finished trials of old sweeps
        do not stay in every scrape."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._lock = threading.Lock()
        self._finished_ttl = finished_series_seconds
        self._experiments: dict[tuple[str, str], ExperimentRows] = {}
        self._finished_at: dict[tuple[str, str], float] = {}
        self._sweeps: dict[tuple[str, str], Rows] = {}
        self._slurm_jobs: dict[str, Rows] = {}
        r = self.registry
        self._reconcile_seconds = Histogram(
            "rlops_reconcile_duration_seconds",
            "Time one reconcile of a resource kind took.",
            ["kind"],
            buckets=_RECONCILE_BUCKETS,
            registry=r,
        )
        self._reconcile_errors = Counter(
            "rlops_reconcile_errors",
            "Reconciles that raised, by resource kind.",
            ["kind"],
            registry=r,
        )
        self._command_seconds = Histogram(
            "rlops_slurm_command_duration_seconds",
            "Time a SLURM command (sbatch, squeue, sacct, scancel, ...) took.",
            ["command"],
            buckets=_COMMAND_BUCKETS,
            registry=r,
        )
        self._command_errors = Counter(
            "rlops_slurm_command_errors", "SLURM commands that failed.", ["command"], registry=r
        )
        self._queue_wait = Histogram(
            "rlops_slurm_queue_wait_seconds",
            "Time a SLURM job waited in the queue before it started.",
            ["cluster"],
            buckets=_QUEUE_WAIT_BUCKETS,
            registry=r,
        )
        self._last_poll = Gauge(
            "rlops_bridge_last_poll_timestamp_seconds",
            "Unix time of the SLURM bridge's last completed poll of its cluster.",
            ["cluster"],
            registry=r,
        )
        self._state = StateCollector(self._snapshot)
        r.register(self._state)

    # Objects: the latest status of each, replaced on every observation.

    def observe_experiment(
        self,
        namespace: str,
        name: str,
        status: RLExperimentStatus,
        sweep: str | None = None,
    ) -> None:
        rows = experiment_rows(namespace, name, status, sweep)
        key = (namespace, name)
        with self._lock:
            if not status.phase.finished:
                self._finished_at.pop(key, None)
            elif self._finished_ttl is not None:
                finished = self._finished_at.setdefault(key, self._clock())
                if self._clock() - finished >= self._finished_ttl:
                    rows = replace(rows, rows=Rows([]))
            self._experiments[key] = rows

    def forget_experiment(self, namespace: str, name: str) -> None:
        with self._lock:
            self._experiments.pop((namespace, name), None)
            self._finished_at.pop((namespace, name), None)

    def _drop_expired(self) -> None:
        """Drop the per-experiment series of experiments finished longer ago than the delay
        (under lock); they still count in rlops_experiments by phase, and the time they
        finished is kept, so a later observation does not bring their series back."""
        if self._finished_ttl is None:
            return
        cutoff = self._clock() - self._finished_ttl
        for key, finished in self._finished_at.items():
            current = self._experiments.get(key)
            if finished <= cutoff and current is not None and current.rows.rows:
                self._experiments[key] = replace(current, rows=Rows([]))

    def observe_sweep(self, namespace: str, name: str, status: SweepStatus) -> None:
        rows = sweep_rows(namespace, name, status)
        with self._lock:
            self._sweeps[(namespace, name)] = rows

    def forget_sweep(self, namespace: str, name: str) -> None:
        with self._lock:
            self._sweeps.pop((namespace, name), None)

    # The operator's reconcile loop.

    @contextmanager
    def time_reconcile(self, kind: str) -> Iterator[None]:
        """Time the block as one reconcile of `kind`; count it as an error if it raises."""
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            self._reconcile_errors.labels(kind=kind).inc()
            raise
        finally:
            self._reconcile_seconds.labels(kind=kind).observe(time.perf_counter() - start)

    # The SLURM bridge.

    def observe_slurm_jobs(self, cluster: str, counts: Mapping[str, int]) -> None:
        """Jobs by SLURM state at one poll; states absent from `counts` disappear."""
        rows = slurm_job_rows(cluster, counts.items())
        with self._lock:
            self._slurm_jobs[cluster] = rows

    def observe_slurm_command(self, command: str, seconds: float, ok: bool = True) -> None:
        self._command_seconds.labels(command=command).observe(seconds)
        if not ok:
            self._command_errors.labels(command=command).inc()

    def observe_queue_wait(self, cluster: str, seconds: float) -> None:
        self._queue_wait.labels(cluster=cluster).observe(seconds)

    def mark_bridge_poll(self, cluster: str) -> None:
        self._last_poll.labels(cluster=cluster).set(self._clock())

    # Exposition.

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format, observed objects by the fast path."""
        with self._state.silenced():
            head = generate_latest(self.registry)
        return head + self._snapshot().text().encode()

    def _snapshot(self) -> Snapshot:
        with self._lock:
            self._drop_expired()
            return Snapshot(
                tuple(self._experiments.values()),
                tuple(self._sweeps.values()),
                tuple(self._slurm_jobs.values()),
            )
