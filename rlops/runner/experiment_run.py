"""`rlops run EXPERIMENT`: one training run in `<root>/<name>/`, resumed when run again."""

from __future__ import annotations

import json
from typing import Any

from rlops.api import Phase, RLExperiment
from rlops.api.runinfo import RunResult, log_path
from rlops.lifecycle import percent_of_budget
from rlops.runner.display import Display, Row, View
from rlops.runner.fleet import Fleet, Trial
from rlops.runner.layout import ExperimentLayout, TrialRecord, write_atomic
from rlops.runner.report import make_report
from rlops.runner.session import (
    INTERRUPTED,
    BackendFactory,
    DirectoryRun,
    Interrupts,
    RunnerSettings,
    RunOptions,
    WindDown,
    pause,
)
from rlops.runner.tracking import RunTracking


def summary(name: str, result: RunResult | None) -> str:
    if result is None:
        return f"{name}: no result yet"
    ret = "-" if result.episode_return_mean is None else f"{result.episode_return_mean:.2f}"
    best = (
        "-" if result.best_episode_return_mean is None else f"{result.best_episode_return_mean:.2f}"
    )
    lines = [
        f"{name}: {result.status}" + (f" ({result.stop_reason})" if result.stop_reason else ""),
        f"  iterations {result.iteration}, timesteps {result.timesteps}, "
        f"time {result.time_seconds:.0f}s, attempt {result.attempt}",
        f"  episode return mean {ret} (best {best})",
    ]
    if result.best_checkpoint:
        lines.append(f"  best checkpoint {result.best_checkpoint}")
    if result.message and result.status != "succeeded":
        lines.append(f"  {result.message}")
    return "\n".join(lines)


def log_tail(trial: Trial, lines: int = 15) -> str:
    if not trial.record.launches:
        return ""
    path = log_path(trial.run_dir, trial.record.launches[-1].attempt)
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return "\n".join(text[-lines:])


class ExperimentRun(DirectoryRun):
    def __init__(
        self,
        experiment: RLExperiment,
        manifest: dict[str, Any],
        options: RunOptions,
        settings: RunnerSettings,
        display: Display,
        backend_factory: BackendFactory,
    ) -> None:
        assert experiment.metadata.name is not None
        self.name = experiment.metadata.name
        self.spec = experiment.spec
        self.layout = ExperimentLayout(options.root / self.name)
        super().__init__(self.layout, manifest, options, settings, display, backend_factory)
        self.tracking = RunTracking(
            experiment.spec.tracking, self.name, self.layout.root, display.message
        )

    def run(self) -> int:
        with self.open() as (reopened, backend):
            fleet = Fleet(backend, "episode_return_mean", parallelism=1)
            trial = fleet.load(self.layout.root) if reopened.resumed else None
            for run_dir, why in fleet.unreadable.items():
                self.display.message(
                    f"{run_dir}: unreadable trial record ({why}); a new one resumes its checkpoints"
                )
            if trial is None or reopened.changed:
                record = trial.record if trial else TrialRecord(name=self.name, seed=self.spec.seed)
                record.backend = fleet.placed_on.value
                trial = fleet.create(self.layout.root, record, self.manifest)
            if reopened.changed and record.launches:
                fleet.retry(self.name)  # Train on under the changed spec, from the checkpoint.
            if not self._ready(fleet, trial):
                self.display.close()
                return 0
            with Interrupts() as interrupts:
                self._loop(fleet, trial, interrupts)
            return self._finish(fleet, trial, interrupted=interrupts.count > 0)

    def _ready(self, fleet: Fleet, trial: Trial) -> bool:
        """Say what a second run does; False when there is nothing left to do."""
        phase = fleet.state(self.name).phase
        if phase == Phase.SUCCEEDED:
            self.display.message(
                f"{self.name} already succeeded in {self.layout.root}; "
                "nothing to do (--new trains it again)"
            )
            self.display.message(summary(self.name, trial.result))
            return False
        checkpoint = trial.result.last_checkpoint if trial.result else None
        start = f"from checkpoint {checkpoint}" if checkpoint else "from scratch (no checkpoint)"
        if phase == Phase.FAILED:
            why = trial.result.message if trial.result else "no result.json"
            self.display.message(
                f"{self.name}: the last attempt failed ({why}); trying again {start}"
            )
            fleet.retry(self.name)
        elif trial.record.launches:
            self.display.message(f"{self.name}: resuming {start}")
        return True

    def _view(self, trial: Trial, phase: Phase, attempts: int) -> View:
        last = trial.progress.last
        row = Row(
            name=self.name,
            parameters="",
            phase=phase,
            attempts=attempts,
            episode_return=last.episode_return_mean if last else None,
            timesteps=last.timesteps if last else 0,
            iteration=last.iteration if last else 0,
            backend=trial.record.backend,
        )
        return View(
            title=f"experiment {self.name}",
            rows=[row],
            status=self.spec.trainer_summary(),
            percent=percent_of_budget(self.spec.stop, last) or 0.0,
        )

    def _loop(self, fleet: Fleet, trial: Trial, interrupts: Interrupts) -> None:
        requeues = 0
        wind_down = WindDown(
            self.settings.stop_grace_seconds,
            self.display.message,
            "interrupted: the run checkpoints and stops (Ctrl-C again to kill it); "
            "run again to resume",
        )
        while True:
            ended = fleet.refresh()
            state = fleet.state(self.name)
            if interrupts.count:
                if wind_down.step(fleet, interrupts):
                    return
            elif state.phase.finished:
                return
            elif state.phase == Phase.PENDING:
                if ended:
                    requeues += 1
                    self.display.message(f"{self.name}: requeued (exit 75); resuming")
                if requeues > self.settings.max_requeues:
                    self.display.message(f"{self.name}: requeued {requeues} times; giving up")
                    return
                fleet.launch_pending()
            self.tracking.experiment(fleet)
            self.display.update(self._view(trial, state.phase, state.attempts))
            pause(self.settings.poll_seconds, interrupts)

    def _finish(self, fleet: Fleet, trial: Trial, interrupted: bool) -> int:
        self.tracking.experiment(fleet, final=True)
        self.tracking.close()
        state = fleet.state(self.name)
        self.display.update(self._view(trial, state.phase, state.attempts))
        self.display.close()
        results = {
            "experiment": self.name,
            "phase": state.phase.value,
            "attempts": state.attempts,
            "result": trial.result.model_dump(mode="json") if trial.result else None,
        }
        write_atomic(self.layout.results, json.dumps(results, indent=1) + "\n")
        if self.options.report and trial.progress.records:
            self.display.message(f"report: {make_report(self.layout.root)}")
        self.display.message(summary(self.name, trial.result))
        if state.phase == Phase.FAILED:
            tail = log_tail(trial)
            if tail:
                self.display.message(f"last lines of {self.layout.root}/attempts/:\n{tail}")
        if interrupted:
            return INTERRUPTED
        return 0 if state.phase == Phase.SUCCEEDED else 1
