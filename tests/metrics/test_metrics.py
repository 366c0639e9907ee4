"""RlopsMetrics: values and label sets of every family, deleted objects' series
disappearing, reconcile timing and errors, SLURM bridge metrics, the HTTP
endpoints, and `promtool check metrics` finding nothing wrong with a scrape."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rlops.api.experiment import Backend, Phase, Progress, RLExperimentStatus
from rlops.api.sweep import SweepPhase, SweepStatus, TrialCounts, TrialSummary
from rlops.metrics import NO_BACKEND, RlopsMetrics, start_http_server


def running(
    iteration: int, timesteps: int, ret: float | None, backend: Backend
) -> RLExperimentStatus:
    return RLExperimentStatus(
        phase=Phase.RUNNING,
        backend=backend,
        progress=Progress(iteration=iteration, timesteps=timesteps, episode_return_mean=ret),
    )


def sweep_status(best: float | None = 41.5) -> SweepStatus:
    return SweepStatus(
        phase=SweepPhase.RUNNING,
        trials=TrialCounts(total=6, pending=1, running=2, succeeded=2, failed=1),
        backends={"kubernetes": 4, "slurm": 2},
        best_trial=TrialSummary(name="sw-3", objective=best) if best is not None else None,
    )


@pytest.fixture
def metrics() -> RlopsMetrics:
    return RlopsMetrics(CollectorRegistry())


def value(m: RlopsMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def series(m: RlopsMetrics, name: str) -> list[dict[str, str]]:
    return [s.labels for family in m.registry.collect() for s in family.samples if s.name == name]


def test_nothing_is_registered_at_import_or_in_the_default_registry() -> None:
    from prometheus_client import REGISTRY

    names = {f.name for f in REGISTRY.collect()}
    assert not any(n.startswith("rlops") for n in names)


def test_experiment_progress_is_exposed_per_experiment(metrics: RlopsMetrics) -> None:
    metrics.observe_experiment("ml", "sw-0", running(4, 2000, 37.25, Backend.SLURM), sweep="sw")
    labels = {"namespace": "ml", "experiment": "sw-0", "sweep": "sw"}
    assert value(metrics, "rlops_experiment_episode_return_mean", **labels) == 37.25
    assert value(metrics, "rlops_experiment_timesteps", **labels) == 2000
    assert value(metrics, "rlops_experiment_iteration", **labels) == 4


def test_a_later_observation_replaces_the_earlier_one(metrics: RlopsMetrics) -> None:
    metrics.observe_experiment("ml", "a", running(1, 100, 10.0, Backend.LOCAL))
    metrics.observe_experiment("ml", "a", running(2, 200, 20.0, Backend.LOCAL))
    labels = {"namespace": "ml", "experiment": "a", "sweep": ""}
    assert value(metrics, "rlops_experiment_episode_return_mean", **labels) == 20.0
    assert len(series(metrics, "rlops_experiment_timesteps")) == 1


def test_an_experiment_without_a_return_yet_has_no_return_series(metrics: RlopsMetrics) -> None:
    metrics.observe_experiment("ml", "a", RLExperimentStatus())
    assert series(metrics, "rlops_experiment_episode_return_mean") == []
    assert (
        value(metrics, "rlops_experiment_timesteps", namespace="ml", experiment="a", sweep="") == 0
    )


def test_experiments_are_counted_by_namespace_phase_and_backend(metrics: RlopsMetrics) -> None:
    metrics.observe_experiment("ml", "a", running(1, 1, 1.0, Backend.KUBERNETES))
    metrics.observe_experiment("ml", "b", running(1, 1, 1.0, Backend.KUBERNETES))
    metrics.observe_experiment(
        "ml", "c", RLExperimentStatus(phase=Phase.SUCCEEDED, backend=Backend.SLURM)
    )
    metrics.observe_experiment("rl", "d", RLExperimentStatus())
    assert (
        value(metrics, "rlops_experiments", namespace="ml", phase="Running", backend="kubernetes")
        == 2
    )
    assert (
        value(metrics, "rlops_experiments", namespace="ml", phase="Succeeded", backend="slurm") == 1
    )
    assert (
        value(metrics, "rlops_experiments", namespace="rl", phase="Pending", backend=NO_BACKEND)
        == 1
    )
    # Every phase is present (as 0) for each namespace and backend seen, so rates and
    # alerts see a 0 rather than a missing series.
    ml_k8s = [s for s in series(metrics, "rlops_experiments") if s["backend"] == "kubernetes"]
    assert {s["phase"] for s in ml_k8s} == {p.value for p in Phase}
    total = sum(
        value(metrics, "rlops_experiments", **s) or 0 for s in series(metrics, "rlops_experiments")
    )
    assert total == 4


def test_a_forgotten_experiment_leaves_no_series(metrics: RlopsMetrics) -> None:
    metrics.observe_experiment("ml", "a", running(1, 1, 1.0, Backend.LOCAL), sweep="sw")
    metrics.observe_experiment("ml", "b", running(1, 1, 2.0, Backend.LOCAL), sweep="sw")
    metrics.forget_experiment("ml", "a")
    metrics.forget_experiment("ml", "never-seen")
    for name in (
        "rlops_experiment_episode_return_mean",
        "rlops_experiment_timesteps",
        "rlops_experiment_iteration",
    ):
        assert [s["experiment"] for s in series(metrics, name)] == ["b"]
    metrics.forget_experiment("ml", "b")
    assert series(metrics, "rlops_experiments") == []


def test_sweep_trials_by_phase_and_by_backend_each_sum_to_the_total(metrics: RlopsMetrics) -> None:
    metrics.observe_sweep("ml", "sw", sweep_status())
    by_phase = {
        s["phase"]: value(metrics, "rlops_sweep_trials", **s)
        for s in series(metrics, "rlops_sweep_trials")
    }
    assert by_phase == {
        "Pending": 1, "Running": 2, "Succeeded": 2, "Failed": 1, "Stopped": 0, "Paused": 0
    }  # fmt: skip
    by_backend = {
        s["backend"]: value(metrics, "rlops_sweep_trials_backend", **s)
        for s in series(metrics, "rlops_sweep_trials_backend")
    }
    assert by_backend == {"kubernetes": 4, "slurm": 2}
    assert sum(by_phase.values()) == sum(by_backend.values()) == 6


def test_sweep_best_objective_and_phase(metrics: RlopsMetrics) -> None:
    metrics.observe_sweep("ml", "sw", sweep_status(best=41.5))
    assert value(metrics, "rlops_sweep_best_objective", namespace="ml", sweep="sw") == 41.5
    phases = {
        s["phase"]: value(metrics, "rlops_sweep_phase", **s)
        for s in series(metrics, "rlops_sweep_phase")
    }
    assert phases == {"Pending": 0, "Running": 1, "Succeeded": 0, "Failed": 0, "Stopped": 0}


def test_a_sweep_without_a_best_trial_has_no_objective_series(metrics: RlopsMetrics) -> None:
    metrics.observe_sweep("ml", "sw", sweep_status(best=None))
    assert series(metrics, "rlops_sweep_best_objective") == []


def test_a_forgotten_sweep_leaves_no_series(metrics: RlopsMetrics) -> None:
    metrics.observe_sweep("ml", "sw", sweep_status())
    metrics.observe_sweep("ml", "other", sweep_status())
    metrics.forget_sweep("ml", "sw")
    for name in (
        "rlops_sweep_trials",
        "rlops_sweep_trials_backend",
        "rlops_sweep_best_objective",
        "rlops_sweep_phase",
    ):
        assert {s["sweep"] for s in series(metrics, name)} == {"other"}


def test_reconcile_is_timed_and_errors_are_counted(metrics: RlopsMetrics) -> None:
    with metrics.time_reconcile("Sweep"):
        pass
    with pytest.raises(RuntimeError), metrics.time_reconcile("Sweep"):
        raise RuntimeError("conflict")
    assert value(metrics, "rlops_reconcile_duration_seconds_count", kind="Sweep") == 2
    assert value(metrics, "rlops_reconcile_errors_total", kind="Sweep") == 1
    assert value(metrics, "rlops_reconcile_errors_total", kind="RLExperiment") is None


def test_slurm_jobs_follow_the_latest_poll(metrics: RlopsMetrics) -> None:
    metrics.observe_slurm_jobs("hpc", {"PENDING": 3, "RUNNING": 1})
    metrics.observe_slurm_jobs("hpc", {"RUNNING": 2})
    assert value(metrics, "rlops_slurm_jobs", cluster="hpc", state="RUNNING") == 2
    assert value(metrics, "rlops_slurm_jobs", cluster="hpc", state="PENDING") is None


def test_slurm_commands_queue_wait_and_last_poll() -> None:
    now = [1_700_000_000.0]
    metrics = RlopsMetrics(CollectorRegistry(), clock=lambda: now[0])
    metrics.observe_slurm_command("squeue", 0.2)
    metrics.observe_slurm_command("sbatch", 1.5, ok=False)
    metrics.observe_queue_wait("hpc", 90)
    metrics.observe_queue_wait("hpc", 30)
    metrics.mark_bridge_poll("hpc")
    assert value(metrics, "rlops_slurm_command_duration_seconds_sum", command="sbatch") == 1.5
    assert value(metrics, "rlops_slurm_command_errors_total", command="sbatch") == 1
    assert value(metrics, "rlops_slurm_command_errors_total", command="squeue") is None
    assert value(metrics, "rlops_slurm_queue_wait_seconds_count", cluster="hpc") == 2
    assert value(metrics, "rlops_slurm_queue_wait_seconds_bucket", cluster="hpc", le="60.0") == 1
    assert value(metrics, "rlops_bridge_last_poll_timestamp_seconds", cluster="hpc") == now[0]


def every_family(metrics: RlopsMetrics) -> None:
    metrics.observe_experiment("ml", "sw-0", running(4, 2000, 37.25, Backend.SLURM), sweep="sw")
    metrics.observe_experiment("ml", "solo", RLExperimentStatus())
    metrics.observe_sweep("ml", "sw", sweep_status())
    with metrics.time_reconcile("Sweep"):
        pass
    metrics.observe_slurm_jobs("hpc", {"RUNNING": 1})
    metrics.observe_slurm_command("sacct", 0.1, ok=False)
    metrics.observe_queue_wait("hpc", 12)
    metrics.mark_bridge_poll("hpc")


@pytest.mark.prometheus
def test_promtool_finds_nothing_wrong_with_a_scrape(metrics: RlopsMetrics) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is not installed: run scripts/setup.sh"
    every_family(metrics)
    for scrape in (metrics.exposition(), generate_latest(metrics.registry)):
        check = subprocess.run([promtool, "check", "metrics"], input=scrape, capture_output=True)
        assert check.returncode == 0 and not check.stdout and not check.stderr, check


def parsed(text: bytes) -> dict[str, set[tuple[str, tuple[tuple[str, str], ...], float]]]:
    return {
        family.name: {(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples}
        for family in text_string_to_metric_families(text.decode())
    }


def test_the_fast_exposition_says_what_the_registry_says(metrics: RlopsMetrics) -> None:
    every_family(metrics)
    # Label values that need escaping in the text format.
    odd = 'quote " backslash \\ newline \n end'
    metrics.observe_experiment("ml", odd, running(1, 10, -3.5e-7, Backend.LOCAL), sweep=odd)
    fast, slow = parsed(metrics.exposition()), parsed(generate_latest(metrics.registry))
    assert fast == slow
    assert odd in {
        dict(labels)["experiment"] for _, labels, _ in fast["rlops_experiment_timesteps"]
    }


def test_http_server_serves_metrics_health_and_readiness(metrics: RlopsMetrics) -> None:
    every_family(metrics)
    ready = [False]
    server = start_http_server(metrics, "127.0.0.1", 0, ready=lambda: ready[0])
    try:
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as r:
            body = r.read().decode()
            assert r.headers["Content-Type"].startswith("text/plain")
        assert 'rlops_sweep_best_objective{namespace="ml",sweep="sw"} 41.5' in body
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"{server.url}/readyz", timeout=5)
        assert not_ready.value.code == 503
        ready[0] = True
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=5) as r:
            assert r.status == 200
    finally:
        server.stop()
