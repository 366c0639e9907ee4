"""A real Prometheus scraping a metrics server: what it stores matches the statuses
fed to RlopsMetrics (best objective, per-experiment returns, trial counts by phase
and backend), a deleted experiment's series go stale, the alert rules load healthy,
and every query of the Grafana dashboard is valid PromQL that returns data.

The statuses are those of a small sweep moving on (a trial finishes, a better best
appears, a trial is deleted); the operator and the SLURM bridge serve the same
RlopsMetrics, so the same `prometheus(targets)` fixture scrapes them in their tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rlops.api.experiment import Backend, Phase, Progress, RLExperimentStatus
from rlops.api.sweep import SweepPhase, SweepStatus, TrialCounts, TrialSummary
from rlops.metrics import RlopsMetrics, start_http_server
from tests.metrics.prom import Prometheus, by_label, prometheus

__all__ = ["prometheus"]

pytestmark = pytest.mark.prometheus

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules.yaml"
DASHBOARD = ROOT / "charts" / "rlops" / "dashboards" / "rlops.json"
NS = "ml"
SWEEP = "cartpole"


def trial(phase: Phase, backend: Backend, iteration: int, ret: float | None) -> RLExperimentStatus:
    return RLExperimentStatus(
        phase=phase,
        backend=backend,
        progress=Progress(iteration=iteration, timesteps=iteration * 500, episode_return_mean=ret),
    )


def summarise(trials: dict[str, RLExperimentStatus]) -> SweepStatus:
    """The sweep status these trials imply (what the sweep engine reports)."""
    counts = TrialCounts(total=len(trials))
    backends: dict[str, int] = {}
    for status in trials.values():
        field = {Phase.SUBMITTED: "pending"}.get(status.phase, status.phase.value.lower())
        setattr(counts, field, getattr(counts, field) + 1)
        assert status.backend is not None
        backends[status.backend.value] = backends.get(status.backend.value, 0) + 1
    returns = {
        n: s.progress.episode_return_mean
        for n, s in trials.items()
        if s.progress and s.progress.episode_return_mean is not None
    }
    best = max(returns, key=lambda n: returns[n])
    return SweepStatus(
        phase=SweepPhase.RUNNING,
        trials=counts,
        backends=backends,
        best_trial=TrialSummary(name=best, objective=returns[best]),
    )


def observe(metrics: RlopsMetrics, trials: dict[str, RLExperimentStatus]) -> SweepStatus:
    for name, status in trials.items():
        metrics.observe_experiment(NS, name, status, sweep=SWEEP)
    sweep = summarise(trials)
    metrics.observe_sweep(NS, SWEEP, sweep)
    return sweep


def assert_prometheus_matches(prom: Prometheus, trials: dict[str, RLExperimentStatus]) -> None:
    sweep = summarise(trials)
    assert sweep.best_trial is not None and sweep.best_trial.objective is not None
    sel = f'namespace="{NS}",sweep="{SWEEP}"'
    prom.await_value(f"rlops_sweep_best_objective{{{sel}}}", sweep.best_trial.objective)
    expected_returns = {
        n: s.progress.episode_return_mean
        for n, s in trials.items()
        if s.progress and s.progress.episode_return_mean is not None
    }
    prom.await_query(
        f"rlops_experiment_episode_return_mean{{{sel}}}",
        lambda r: by_label(r, "experiment") == expected_returns,
    )
    expected_phases = {
        "Pending": sweep.trials.pending,
        "Running": sweep.trials.running,
        "Succeeded": sweep.trials.succeeded,
        "Failed": sweep.trials.failed,
        "Stopped": sweep.trials.stopped,
        "Paused": sweep.trials.paused,
    }
    prom.await_query(
        f"rlops_sweep_trials{{{sel}}}", lambda r: by_label(r, "phase") == expected_phases
    )
    prom.await_value(f"sum(rlops_sweep_trials{{{sel}}})", sweep.trials.total)
    prom.await_query(
        f"rlops_sweep_trials_backend{{{sel}}}",
        lambda r: by_label(r, "backend") == sweep.backends,
    )
    prom.await_value(f"sum(rlops_sweep_trials_backend{{{sel}}})", sweep.trials.total)


@pytest.fixture
def served() -> Iterator[tuple[RlopsMetrics, str]]:
    metrics = RlopsMetrics()
    server = start_http_server(metrics, "127.0.0.1", 0)
    yield metrics, f"127.0.0.1:{server.port}"
    server.stop()


def test_prometheus_sees_the_sweep_as_its_statuses_say(
    served: tuple[RlopsMetrics, str], prometheus: Callable[..., Prometheus]
) -> None:
    metrics, target = served
    trials = {
        f"{SWEEP}-0": trial(Phase.SUCCEEDED, Backend.KUBERNETES, 8, 152.5),
        f"{SWEEP}-1": trial(Phase.RUNNING, Backend.KUBERNETES, 3, 61.0),
        f"{SWEEP}-2": trial(Phase.RUNNING, Backend.SLURM, 1, 20.25),
        f"{SWEEP}-3": RLExperimentStatus(phase=Phase.PENDING, backend=Backend.SLURM),
    }
    observe(metrics, trials)
    prom = prometheus([target])
    prom.await_targets_up()
    assert_prometheus_matches(prom, trials)

    # The sweep moves on: trial 1 finishes above the old best, trial 3 starts.
    trials[f"{SWEEP}-1"] = trial(Phase.SUCCEEDED, Backend.KUBERNETES, 10, 190.0)
    trials[f"{SWEEP}-3"] = trial(Phase.RUNNING, Backend.SLURM, 1, 15.0)
    observe(metrics, trials)
    assert_prometheus_matches(prom, trials)

    # A deleted trial's series go stale at the next scrape.
    metrics.forget_experiment(NS, f"{SWEEP}-2")
    prom.await_query(f'rlops_experiment_timesteps{{experiment="{SWEEP}-2"}}', lambda r: r == [])
    assert len(prom.query(f'rlops_experiment_timesteps{{sweep="{SWEEP}"}}')) == 3


def feed_every_family(metrics: RlopsMetrics) -> None:
    observe(
        metrics,
        {
            f"{SWEEP}-0": trial(Phase.RUNNING, Backend.LOCAL, 2, 30.0),
            f"{SWEEP}-1": trial(Phase.RUNNING, Backend.SLURM, 1, 12.0),
        },
    )
    for i in range(3):
        with metrics.time_reconcile("Sweep"):
            pass
        with pytest.raises(KeyError), metrics.time_reconcile("RLExperiment"):
            raise KeyError(i)
        metrics.observe_slurm_command("squeue", 0.05 * (i + 1))
        metrics.observe_queue_wait("hpc", 30.0 * (i + 1))
    metrics.observe_slurm_jobs("hpc", {"RUNNING": 1, "PENDING": 2})
    metrics.mark_bridge_poll("hpc")


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def test_alert_rules_load_and_dashboard_queries_return_data(
    served: tuple[RlopsMetrics, str], prometheus: Callable[..., Prometheus]
) -> None:
    metrics, target = served
    feed_every_family(metrics)
    prom = prometheus([target], rule_files=[RULES])
    prom.await_targets_up()

    rules = prom.await_rules_evaluated()
    assert {r["name"] for r in rules} >= {
        "RlopsSweepStalled",
        "RlopsSweepTrialFailureRateHigh",
        "RlopsReconcileErrors",
        "RlopsSlurmBridgeNotPolling",
        "RlopsSlurmCommandsFailing",
    }
    assert [r for r in rules if r["health"] != "ok"] == []

    queries = dashboard_queries()
    assert len(queries) >= 10
    # Scrapes keep coming in while we wait, so rate() has two samples to work with.
    metrics.observe_slurm_command("squeue", 0.2)
    for title, expr in queries:
        promql = (
            expr.replace("$namespace", ".*")
            .replace("$sweep", ".*")
            .replace("$__rate_interval", "1m")
        )
        assert prom.await_query(promql, lambda r: bool(r), timeout=30), title
