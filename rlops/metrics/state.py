"""The series of observed objects: experiments, sweeps and SLURM job counts.

Each observed object becomes a few rows (family, label values, value) once, when it
is observed. A scrape then either joins the rows' pre-rendered text lines (the fast
path of `/metrics`: one string join per family, whatever the number of objects) or
turns the rows into metric families for `registry.collect()`. Both come from the
same rows, so they cannot disagree.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from rlops.api.experiment import Phase, RLExperimentStatus
from rlops.api.sweep import SweepPhase, SweepStatus

# The backend label of an experiment no backend has taken yet.
NO_BACKEND = "none"


@dataclass(frozen=True)
class Family:
    name: str
    help: str
    labels: tuple[str, ...]

    def header(self) -> str:
        return f"# HELP {self.name} {self.help}\n# TYPE {self.name} gauge\n"


EXPERIMENTS = Family(
    "rlops_experiments",
    "RLExperiments by namespace, phase and backend.",
    ("namespace", "phase", "backend"),
)
_PER_EXPERIMENT = ("namespace", "experiment", "sweep")
RETURN = Family(
    "rlops_experiment_episode_return_mean",
    "Latest mean episode return of an RLExperiment.",
    _PER_EXPERIMENT,
)
TIMESTEPS = Family(
    "rlops_experiment_timesteps", "Env steps an RLExperiment has sampled.", _PER_EXPERIMENT
)
ITERATION = Family(
    "rlops_experiment_iteration", "Training iterations an RLExperiment has done.", _PER_EXPERIMENT
)
SWEEP_PHASE = Family(
    "rlops_sweep_phase",
    "1 for the phase a Sweep is in, 0 for the others.",
    ("namespace", "sweep", "phase"),
)
SWEEP_TRIALS = Family(
    "rlops_sweep_trials",
    "Trials of a Sweep by phase; sums to the sweep's trials.",
    ("namespace", "sweep", "phase"),
)
SWEEP_BACKENDS = Family(
    "rlops_sweep_trials_backend",
    "Trials of a Sweep by backend; sums to the sweep's trials.",
    ("namespace", "sweep", "backend"),
)
BEST_OBJECTIVE = Family(
    "rlops_sweep_best_objective",
    "Objective of a Sweep's best configuration (mean over its seeds).",
    ("namespace", "sweep"),
)
SLURM_JOBS = Family(
    "rlops_slurm_jobs",
    "Jobs of rlops experiments by cluster and last observed SLURM state (kept until deletion).",
    ("cluster", "state"),
)
_PHASES = tuple(p.value for p in Phase)
EXPERIMENT_FAMILIES = (RETURN, TIMESTEPS, ITERATION)
SWEEP_FAMILIES = (SWEEP_PHASE, SWEEP_TRIALS, SWEEP_BACKENDS, BEST_OBJECTIVE)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


@dataclass(frozen=True, slots=True)
class Row:
    family: Family
    values: tuple[str, ...]
    value: float

    def line(self) -> str:
        pairs = sorted(zip(self.family.labels, self.values, strict=True))
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
        value: str = floatToGoString(self.value)  # type: ignore[no-untyped-call]
        return f"{self.family.name}{{{labels}}} {value}\n"


class Rows:
    """An object's rows and their text, grouped by family."""

    __slots__ = ("rows", "text")

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = tuple(rows)
        text: dict[str, list[str]] = {}
        for row in rows:
            text.setdefault(row.family.name, []).append(row.line())
        self.text = {name: "".join(lines) for name, lines in text.items()}


@dataclass(frozen=True, slots=True)
class ExperimentRows:
    namespace: str
    phase: str
    backend: str
    rows: Rows


def experiment_rows(
    namespace: str, name: str, status: RLExperimentStatus, sweep: str | None
) -> ExperimentRows:
    key = (namespace, name, sweep or "")
    progress = status.progress
    rows = []
    if progress and progress.episode_return_mean is not None:
        rows.append(Row(RETURN, key, progress.episode_return_mean))
    rows.append(Row(TIMESTEPS, key, progress.timesteps if progress else 0))
    rows.append(Row(ITERATION, key, progress.iteration if progress else 0))
    backend = status.backend.value if status.backend else NO_BACKEND
    return ExperimentRows(namespace, status.phase.value, backend, Rows(rows))


def sweep_rows(namespace: str, name: str, status: SweepStatus) -> Rows:
    t = status.trials
    rows = [
        Row(SWEEP_PHASE, (namespace, name, p.value), 1.0 if p == status.phase else 0.0)
        for p in SweepPhase
    ]
    by_phase = {
        "Pending": t.pending,
        "Running": t.running,
        "Succeeded": t.succeeded,
        "Failed": t.failed,
        "Stopped": t.stopped,
        "Paused": t.paused,
    }
    rows += [Row(SWEEP_TRIALS, (namespace, name, p), n) for p, n in by_phase.items()]
    rows += [
        Row(SWEEP_BACKENDS, (namespace, name, b), n) for b, n in sorted(status.backends.items())
    ]
    if status.best_trial and status.best_trial.objective is not None:
        rows.append(Row(BEST_OBJECTIVE, (namespace, name), status.best_trial.objective))
    return Rows(rows)


def slurm_job_rows(cluster: str, counts: Iterable[tuple[str, int]]) -> Rows:
    return Rows([Row(SLURM_JOBS, (cluster, state), n) for state, n in sorted(counts)])


def phase_count_rows(experiments: Iterable[ExperimentRows]) -> Rows:
    """rlops_experiments: every phase (0 included) for each namespace and backend seen."""
    counts = Counter((e.namespace, e.backend, e.phase) for e in experiments)
    seen = sorted({(namespace, backend) for namespace, backend, _ in counts})
    return Rows(
        [
            Row(EXPERIMENTS, (namespace, phase, backend), counts[(namespace, backend, phase)])
            for namespace, backend in seen
            for phase in _PHASES
        ]
    )


@dataclass(frozen=True)
class Snapshot:
    """Everything observed at one instant, as rows."""

    experiments: tuple[ExperimentRows, ...]
    sweeps: tuple[Rows, ...]
    slurm_jobs: tuple[Rows, ...]

    def groups(self) -> Iterator[tuple[Family, list[Rows]]]:
        experiments = [e.rows for e in self.experiments]
        yield EXPERIMENTS, [phase_count_rows(self.experiments)]
        for family in EXPERIMENT_FAMILIES:
            yield family, experiments
        for family in SWEEP_FAMILIES:
            yield family, list(self.sweeps)
        yield SLURM_JOBS, list(self.slurm_jobs)

    def text(self) -> str:
        """The Prometheus text format of every family: a join of pre-rendered lines."""
        out = []
        for family, rows in self.groups():
            out.append(family.header())
            out.extend(r.text.get(family.name, "") for r in rows)
        return "".join(out)

    def families(self) -> Iterator[Metric]:
        for family, rows in self.groups():
            metric = GaugeMetricFamily(family.name, family.help, labels=family.labels)
            for r in rows:
                for row in r.rows:
                    if row.family is family:
                        metric.add_metric(row.values, row.value)
            yield metric


class StateCollector(Collector):
    """Puts the observed objects' families into a registry; silent while `text()` serves them."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot
        self._local = threading.local()

    def describe(self) -> Iterable[Metric]:
        return ()  # The families depend on what was observed.

    def collect(self) -> Iterable[Metric]:
        if getattr(self._local, "silent", False):
            return ()
        return list(self._snapshot().families())

    def silenced(self) -> _Silence:
        return _Silence(self._local)


class _Silence:
    def __init__(self, local: threading.local) -> None:
        self._local = local

    def __enter__(self) -> None:
        self._local.silent = True

    def __exit__(self, *exc: object) -> None:
        self._local.silent = False
