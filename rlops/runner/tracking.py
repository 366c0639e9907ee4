"""`spec.tracking` for `rlops run`: the runner's fleet, as snapshots, to the trackers.

The runner is the driver: it reads each trial's progress.jsonl and result.json anyway,
so tracking needs nothing from the training processes (which may run on SLURM compute
nodes without network). A tracker that fails is reported once and tried again at the
next poll; training goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlops.api import SweepStatus, TrackingSpec
from rlops.runner.fleet import Fleet
from rlops.tracking import SweepSnapshot, TrialSnapshot

RETRY_SECONDS = 30.0
LOCAL_NAMESPACE = "local"  # rlops.key of local runs: "local/<sweep>/<trial>"


def trial_snapshot(fleet: Fleet, name: str, sweep: str | None) -> TrialSnapshot:
    trial, state = fleet.trials[name], fleet.state(name)
    record = trial.record
    return TrialSnapshot(
        name=name,
        namespace=LOCAL_NAMESPACE,
        phase=state.phase.value,
        sweep=sweep,
        configuration=f"{sweep}-{record.index}" if sweep else None,
        seed=record.seed,
        parameters=dict(record.parameters),
        records=list(trial.progress.records),
        result=trial.result,
        run_dir=str(trial.run_dir),
    )


class RunTracking:
    """The trackers of one run (none when the manifest asks for none)."""

    def __init__(
        self, spec: TrackingSpec | None, name: str, directory: Path, warn: Callable[[str], None]
    ) -> None:
        self.spec, self.name, self.directory, self.warn = spec, name, directory, warn
        self._trackers: list[Any] | None = None
        self._failing = False
        self._retry_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.spec is not None and (self.spec.mlflow or self.spec.wandb) is not None

    def trackers(self) -> list[Any]:
        if self._trackers is None:
            assert self.spec is not None
            trackers: list[Any] = []
            if self.spec.mlflow is not None:
                from rlops.tracking.mlflow import MlflowTracker

                trackers.append(MlflowTracker(self.spec.mlflow, self.name))
            if self.spec.wandb is not None:
                from rlops.tracking.wandb import WandbTracker

                trackers.append(WandbTracker(self.spec.wandb, self.name, self.directory))
            self._trackers = trackers
        return self._trackers

    def _guarded(self, action: Callable[[], None], final: bool = False) -> None:
        if self._failing and not final and time.monotonic() < self._retry_at:
            return
        try:
            action()
        except Exception as exc:  # A tracking server's trouble never stops training.
            if not self._failing:
                self.warn(
                    f"tracking: {type(exc).__name__}: {exc} "
                    f"(tried again every {RETRY_SECONDS:.0f} s)"
                )
            self._failing = True
            self._retry_at = time.monotonic() + RETRY_SECONDS
        else:
            if self._failing:
                self.warn("tracking: back in touch")
            self._failing = False

    def sweep(self, fleet: Fleet, status: SweepStatus, final: bool = False) -> None:
        if not self.enabled:
            return

        def sync() -> None:
            for tracker in self.trackers():
                one(tracker)

        def one(tracker: Any) -> None:
            best = status.best_trial
            parent = tracker.sweep(
                SweepSnapshot(
                    name=self.name,
                    namespace=LOCAL_NAMESPACE,
                    phase=status.phase.value,
                    metric="",
                    best_name=best.name if best else None,
                    best_objective=best.objective if best else None,
                    best_parameters=dict(best.parameters) if best else {},
                    message=status.message or "",
                )
            )
            for name in sorted(fleet.trials):
                tracker.trial(trial_snapshot(fleet, name, self.name), parent)

        self._guarded(sync, final)

    def experiment(self, fleet: Fleet, final: bool = False) -> None:
        if not self.enabled:
            return

        def sync() -> None:
            for tracker in self.trackers():
                tracker.trial(trial_snapshot(fleet, self.name, None))

        self._guarded(sync, final)

    def close(self) -> None:
        """Runs left open (an interrupted run) are closed; the next run resumes them."""
        for tracker in self._trackers or []:
            if hasattr(tracker, "close"):
                self._guarded(tracker.close, final=True)
