"""Prometheus metrics of the operator, the SLURM bridge and `rlops run`.

One small observer, `RlopsMetrics`, over an injected registry: nothing is
registered at import time. Drivers tell it what they observed (an experiment's
status, a sweep's status, a SLURM poll); it keeps the latest value per object in
plain dicts and a custom collector turns them into series at scrape time. So a
scrape costs one pass over the dicts, and `forget_*` of a deleted object removes
every series it had without per-series bookkeeping.

Trial counts of a sweep come in two families because a SweepStatus holds two
marginals (trials by phase, trials by backend), not their joint: each family sums
to the sweep's trial total on its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rlops.api.experiment import Phase, RLExperimentStatus
from rlops.api.sweep import SweepPhase, SweepStatus
from rlops.metrics_server import MetricsServer, start_http_server

__all__ = ["NO_BACKEND", "MetricsServer", "RlopsMetrics", "start_http_server"]

# The backend label of an experiment no backend has taken yet.
NO_BACKEND = "none"

_RECONCILE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_QUEUE_WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)


@dataclass(frozen=True, slots=True)
class _Experiment:
    sweep: str
    phase: str
    backend: str
    episode_return_mean: float | None
    timesteps: int
    iteration: int


@dataclass(frozen=True, slots=True)
class _Sweep:
    phase: str
    by_phase: tuple[tuple[str, int], ...]
    by_backend: tuple[tuple[str, int], ...]
    best_objective: float | None


def _experiment_sample(status: RLExperimentStatus, sweep: str | None) -> _Experiment:
    progress = status.progress
    return _Experiment(
        sweep=sweep or "",
        phase=status.phase.value,
        backend=status.backend.value if status.backend else NO_BACKEND,
        episode_return_mean=progress.episode_return_mean if progress else None,
        timesteps=progress.timesteps if progress else 0,
        iteration=progress.iteration if progress else 0,
    )


def _sweep_sample(status: SweepStatus) -> _Sweep:
    t = status.trials
    by_phase = (
        ("Pending", t.pending),
        ("Running", t.running),
        ("Succeeded", t.succeeded),
        ("Failed", t.failed),
        ("Stopped", t.stopped),
    )
    best = status.best_trial.objective if status.best_trial else None
    return _Sweep(
        phase=status.phase.value,
        by_phase=by_phase,
        by_backend=tuple(sorted(status.backends.items())),
        best_objective=best,
    )


class _StateCollector(Collector):
    """Series computed from the observed objects at scrape time."""

    def __init__(self, owner: RlopsMetrics) -> None:
        self._owner = owner

    def describe(self) -> Iterable[Metric]:
        return ()  # Families depend on what was observed; never checked at registration.

    def collect(self) -> Iterable[Metric]:
        experiments, sweeps, slurm_jobs = self._owner._snapshot()
        yield from _experiment_families(experiments)
        yield from _sweep_families(sweeps)
        jobs = GaugeMetricFamily(
            "rlops_slurm_jobs",
            "SLURM jobs of rlops experiments by cluster and SLURM state, at the last poll.",
            labels=["cluster", "state"],
        )
        for cluster, counts in slurm_jobs.items():
            for state, n in counts:
                jobs.add_metric([cluster, state], n)
        yield jobs


def _experiment_families(experiments: dict[tuple[str, str], _Experiment]) -> Iterator[Metric]:
    by_phase = GaugeMetricFamily(
        "rlops_experiments",
        "RLExperiments by namespace, phase and backend.",
        labels=["namespace", "phase", "backend"],
    )
    labels = ["namespace", "experiment", "sweep"]
    returns = GaugeMetricFamily(
        "rlops_experiment_episode_return_mean",
        "Latest mean episode return of an RLExperiment.",
        labels=labels,
    )
    timesteps = GaugeMetricFamily(
        "rlops_experiment_timesteps", "Env steps an RLExperiment has sampled.", labels=labels
    )
    iteration = GaugeMetricFamily(
        "rlops_experiment_iteration",
        "Training iterations an RLExperiment has done.",
        labels=labels,
    )
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for (namespace, name), e in experiments.items():
        phases = counts.setdefault((namespace, e.backend), {p.value: 0 for p in Phase})
        phases[e.phase] += 1
        key = [namespace, name, e.sweep]
        if e.episode_return_mean is not None:
            returns.add_metric(key, e.episode_return_mean)
        timesteps.add_metric(key, e.timesteps)
        iteration.add_metric(key, e.iteration)
    for (namespace, backend), phases in counts.items():
        for phase, n in phases.items():
            by_phase.add_metric([namespace, phase, backend], n)
    return iter((by_phase, returns, timesteps, iteration))


def _sweep_families(sweeps: dict[tuple[str, str], _Sweep]) -> Iterator[Metric]:
    phase = GaugeMetricFamily(
        "rlops_sweep_phase",
        "1 for the phase a Sweep is in, 0 for the others.",
        labels=["namespace", "sweep", "phase"],
    )
    trials = GaugeMetricFamily(
        "rlops_sweep_trials",
        "Trials of a Sweep by phase; sums to the sweep's trials.",
        labels=["namespace", "sweep", "phase"],
    )
    by_backend = GaugeMetricFamily(
        "rlops_sweep_trials_backend",
        "Trials of a Sweep by backend; sums to the sweep's trials.",
        labels=["namespace", "sweep", "backend"],
    )
    best = GaugeMetricFamily(
        "rlops_sweep_best_objective",
        "Objective of a Sweep's best configuration (mean over its seeds).",
        labels=["namespace", "sweep"],
    )
    for (namespace, name), s in sweeps.items():
        for p in SweepPhase:
            phase.add_metric([namespace, name, p.value], 1.0 if p.value == s.phase else 0.0)
        for p_name, n in s.by_phase:
            trials.add_metric([namespace, name, p_name], n)
        for backend, n in s.by_backend:
            by_backend.add_metric([namespace, name, backend], n)
        if s.best_objective is not None:
            best.add_metric([namespace, name], s.best_objective)
    return iter((phase, trials, by_backend, best))


class RlopsMetrics:
    """What the operator, the bridge and the local runner observed, as Prometheus metrics."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._experiments: dict[tuple[str, str], _Experiment] = {}
        self._sweeps: dict[tuple[str, str], _Sweep] = {}
        self._slurm_jobs: dict[str, tuple[tuple[str, int], ...]] = {}
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
            "rlops_slurm_command_errors",
            "SLURM commands that failed.",
            ["command"],
            registry=r,
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
        r.register(_StateCollector(self))

    # Objects: the latest status of each, replaced on every observation.

    def observe_experiment(
        self,
        namespace: str,
        name: str,
        status: RLExperimentStatus,
        sweep: str | None = None,
    ) -> None:
        sample = _experiment_sample(status, sweep)
        with self._lock:
            self._experiments[(namespace, name)] = sample

    def forget_experiment(self, namespace: str, name: str) -> None:
        with self._lock:
            self._experiments.pop((namespace, name), None)

    def observe_sweep(self, namespace: str, name: str, status: SweepStatus) -> None:
        sample = _sweep_sample(status)
        with self._lock:
            self._sweeps[(namespace, name)] = sample

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
        snapshot = tuple(sorted(counts.items()))
        with self._lock:
            self._slurm_jobs[cluster] = snapshot

    def observe_slurm_command(self, command: str, seconds: float, ok: bool = True) -> None:
        self._command_seconds.labels(command=command).observe(seconds)
        if not ok:
            self._command_errors.labels(command=command).inc()

    def observe_queue_wait(self, cluster: str, seconds: float) -> None:
        self._queue_wait.labels(cluster=cluster).observe(seconds)

    def mark_bridge_poll(self, cluster: str) -> None:
        self._last_poll.labels(cluster=cluster).set(self._clock())

    def _snapshot(
        self,
    ) -> tuple[
        dict[tuple[str, str], _Experiment],
        dict[tuple[str, str], _Sweep],
        dict[str, tuple[tuple[str, int], ...]],
    ]:
        with self._lock:
            return dict(self._experiments), dict(self._sweeps), dict(self._slurm_jobs)
