"""Bounded resources: per-experiment metrics series of a finished experiment are dropped
after the configured delay (they still count by phase, and do not come back on a later
observation), while unfinished ones stay;
an error of one object (bridge, operator or its trackers) is logged once per interval,
not on every retry, and an outage of SLURM once per outage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rlops.api import Phase, RLExperiment
from rlops.api.experiment import RLExperimentStatus
from rlops.api.ratelimit import ErrorLog
from rlops.api.settings import Settings
from rlops.backends.slurm.client import SlurmUnavailable
from rlops.metrics import RlopsMetrics
from rlops.operator.controller import Controller
from rlops.operator.kube import Kind
from rlops.tracking import TrialSnapshot
from rlops.tracking.drivers import KubeTracking
from tests.builders import experiment
from tests.faults.fakes import FakeSlurm, MemoryStore, bridge, slurm_experiment
from tests.operator.test_controller_pause import FakeKube


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def series(metrics: RlopsMetrics, name: str) -> int:
    text = metrics.exposition().decode()
    return sum(f'experiment="{name}"' in line for line in text.splitlines())


def test_series_of_finished_trials_are_dropped_after_the_delay() -> None:
    clock = Clock()
    metrics = RlopsMetrics(clock=clock, finished_series_seconds=600)
    done = RLExperimentStatus(phase=Phase.SUCCEEDED)
    running = RLExperimentStatus(phase=Phase.RUNNING)
    for i in range(1000):
        metrics.observe_experiment("ns", f"t{i}", done, "sweep")
    metrics.observe_experiment("ns", "live", running, "sweep")
    assert series(metrics, "t0") > 0
    clock.now += 599
    assert series(metrics, "t999") > 0
    clock.now += 2
    assert series(metrics, "t0") == series(metrics, "t999") == 0
    assert series(metrics, "live") > 0
    succeeded = 'rlops_experiments{backend="none",namespace="ns",phase="Succeeded"} 1000.0'
    assert succeeded in metrics.exposition().decode()  # still counted by phase
    metrics.observe_experiment("ns", "t0", done, "sweep")  # observed again: stays dropped
    assert series(metrics, "t0") == 0


def test_an_error_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    errors = ErrorLog(logging.getLogger("t"), interval=300, clock=clock)
    for _ in range(100):  # a poll every 5 s for 500 s, failing every time
        errors.log("ns/bad", "ns/bad failed: result.json is a directory")
        clock.now += 5
    logged = [r for r in caplog.records if "ns/bad failed" in r.getMessage()]
    assert len(logged) == 2
    assert "(59 more in the last 300 s)" in logged[1].getMessage()


class BrokenKube(FakeKube):
    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        raise RuntimeError("API server answered 500")


async def test_a_permanently_failing_experiment_logs_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = experiment("bad", namespace="ns").kubernetes().obj()
    body["metadata"].update(uid="u-1", generation=1, resourceVersion="7")
    metrics = RlopsMetrics(CollectorRegistry())
    controller = Controller(Settings(secret="s"), BrokenKube(), metrics)  # type: ignore[arg-type]
    controller.indexes.bind(experiments={("ns", "bad"): [body]}, rayjobs={})
    for _ in range(20):  # a retry every 5 s for 100 s
        await controller.sync_experiment(("ns", "bad"))
    for handle in controller.rechecks.values():
        handle.cancel()
    logged = [r for r in caplog.records if "reconciling experiment ns/bad failed" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


class SlurmDown(FakeSlurm):
    """sbatch fails as SLURM does when munge is down, until `up`; the bridge stops after
    `polls` polls."""

    def __init__(self, polls: int) -> None:
        super().__init__()
        self.up, self.polls, self.bridge = False, polls, None

    def submit(self, script: str, *, hold: bool = False, comment: str | None = None) -> str:
        self.polls -= 1
        if self.polls <= 0 and self.bridge is not None:
            self.bridge.stop()
        if not self.up:
            raise SlurmUnavailable("sbatch: error: Munge encode failed")
        return super().submit(script, hold=hold, comment=comment)


def test_an_unavailable_slurm_is_logged_once_per_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, slurm = MemoryStore(), SlurmDown(polls=30)
    store.add(slurm_experiment("waiting"))
    b = bridge(store, slurm, tmp_path)
    b.settings.poll_interval_seconds = 0
    slurm.bridge = b  # type: ignore[assignment]
    b.run()  # 30 polls, every one meets the outage
    outage = [r for r in caplog.records if "SLURM unavailable" in r.getMessage()]
    assert len(outage) == 1 and outage[0].levelno == logging.WARNING
    slurm.up, slurm.polls = True, 1
    b._stop.clear()
    b.run()  # SLURM is back: the experiment is submitted
    assert slurm.table
    caplog.clear()
    store.add(slurm_experiment("next"))
    slurm.up, slurm.polls = False, 1
    b._stop.clear()
    b.run()  # a new outage after the recovery: logged at once
    assert sum("SLURM unavailable" in r.getMessage() for r in caplog.records) == 1


class BrokenTracker:
    def trial(self, snapshot: TrialSnapshot, parent: Any) -> None:
        raise ConnectionError("MLflow answered 503")


def test_a_tracker_that_keeps_failing_logs_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracking = KubeTracking()
    tracking._trackers = lambda *_: [BrokenTracker()]  # type: ignore[method-assign]
    body = experiment("tracked", namespace="ns").kubernetes().obj()
    model = RLExperiment.model_validate(body)
    snapshot = TrialSnapshot(name="tracked", namespace="ns", phase="Running")
    for _ in range(20):  # the progress writer retries every flush
        with pytest.raises(ConnectionError):
            tracking.trial(model, None, snapshot)
    logged = [r for r in caplog.records if "tracking ns/tracked failed" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
