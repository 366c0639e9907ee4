"""`rlops run SWEEP`: observe the trials, ask the engine for a plan, carry it out, repeat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlops.api import Backend, Phase, SlurmPlacement, Sweep, SweepPhase, SweepStatus
from rlops.runner.display import Display, Row, View, format_parameters
from rlops.runner.fleet import Fleet
from rlops.runner.layout import SweepLayout, TrialRecord, write_yaml
from rlops.runner.pbt_report import initial_parameters
from rlops.runner.report import make_report
from rlops.runner.results import write_results
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
from rlops.sweep import ExploitPlan, Plan, TrialPlan, leaderboard, plan
from rlops.sweep.early_stopping import pause_point


def trial_manifest(trial: TrialPlan, backend: Backend) -> dict[str, Any]:
    """The RLExperiment the runtime trains for one trial, placed on `backend`."""
    placement = trial.spec.placement.model_copy(update={"backend": backend})
    if backend == Backend.SLURM and placement.slurm is None:
        placement = placement.model_copy(update={"slurm": SlurmPlacement()})
    spec = trial.spec.model_copy(update={"placement": placement})
    return {
        "apiVersion": "rlops.dev/v1alpha1",
        "kind": "RLExperiment",
        "metadata": {"name": trial.name, "labels": dict(trial.labels)},
        "spec": spec.dump(),
    }


def exploit_trial(fleet: Fleet, exploit: ExploitPlan, message: Callable[[str], None]) -> None:
    """pbt: resume a Paused trial from a better one's checkpoint with explored parameters."""
    trial = fleet.trials[exploit.name]
    manifest = trial_manifest(
        TrialPlan(
            name=exploit.name,
            index=trial.record.index,
            seed_index=trial.record.seed_index,
            seed=exploit.spec.seed or 0,
            parameters=dict(exploit.exploit.parameters),
            spec=exploit.spec,
            backend=fleet.placed_on,
            labels=dict(trial.record.labels),
        ),
        fleet.placed_on,
    )
    if fleet.exploit(exploit.name, exploit.exploit, manifest):
        e = exploit.exploit
        message(
            f"{exploit.name}: exploits {e.source} at iteration {e.iteration}; "
            f"now {format_parameters(e.parameters)}"
        )


def rows(fleet: Fleet) -> list[Row]:
    out = []
    for state in sorted(fleet.states(), key=lambda s: (s.index, s.seed_index)):
        trial = fleet.trials[state.name]
        last = trial.progress.last
        out.append(
            Row(
                name=state.name,
                parameters=format_parameters(dict(state.parameters)),
                phase=state.phase,
                attempts=state.attempts,
                episode_return=last.episode_return_mean if last else None,
                timesteps=last.timesteps if last else 0,
                iteration=last.iteration if last else 0,
                backend=trial.record.backend,
            )
        )
    return out


class SweepRun(DirectoryRun):
    def __init__(
        self,
        sweep: Sweep,
        manifest: dict[str, Any],
        options: RunOptions,
        settings: RunnerSettings,
        display: Display,
        backend_factory: BackendFactory,
    ) -> None:
        assert sweep.metadata.name is not None
        self.sweep = sweep
        self.name = sweep.metadata.name
        self.spec = sweep.spec
        self.layout = SweepLayout(options.root / self.name)
        super().__init__(self.layout, manifest, options, settings, display, backend_factory)
        self.warned_moves = False
        tracking = sweep.spec.tracking or sweep.spec.template.tracking
        self.tracking = RunTracking(tracking, self.name, self.layout.root, display.message)

    def run(self) -> int:
        with self.open() as (reopened, backend):
            backend.check(f"{self.name} (template)", self.spec.template.resources)
            write_yaml(self.layout.manifest, self.manifest)
            spec = self.spec
            fleet = Fleet(
                backend,
                spec.objective.metric,
                parallelism=spec.parallelism,
                pause_point=lambda trial: pause_point(spec, trial.promotions),
            )
            for name in self.layout.trial_names():
                fleet.load(self.layout.trial(name))
            for run_dir, why in fleet.unreadable.items():
                self.display.message(f"left out {run_dir}: unreadable trial files ({why})")
            if reopened.resumed:
                states = fleet.states()
                done = sum(1 for s in states if s.phase.finished)
                paused = sum(1 for s in states if s.phase == Phase.PAUSED)
                self.display.message(
                    f"resuming {self.layout.root}: {len(fleet.trials)} trial(s) known, "
                    f"{done} finished (kept as they are)"
                    + (f", {paused} paused (until the sweep resumes them)" if paused else "")
                )
            with Interrupts() as interrupts:
                status = self._loop(fleet, interrupts)
            return self._finish(fleet, status, interrupted=interrupts.count > 0)

    def _loop(self, fleet: Fleet, interrupts: Interrupts) -> SweepStatus:
        wind_down = WindDown(
            self.settings.stop_grace_seconds,
            self.display.message,
            "interrupted: trials checkpoint and stop (Ctrl-C again to kill them); "
            "run the same command again to resume",
        )
        status = SweepStatus()
        while True:
            fleet.refresh()
            if interrupts.count:
                if wind_down.step(fleet, interrupts):
                    return plan(self.spec, self.name, fleet.states()).status
            else:
                current = plan(self.spec, self.name, fleet.states())
                status = current.status
                self._act(fleet, current)
                self.tracking.sweep(fleet, status)
                if current.done and not fleet.running:
                    return status
            self.display.update(
                View(title=f"sweep {self.name}", rows=rows(fleet), status=status.message or "")
            )
            pause(self.settings.poll_seconds, interrupts)

    def _act(self, fleet: Fleet, current: Plan) -> None:
        """Carry out a plan: stops, pauses, retries, resumes, new trials; then launch what is
        Pending (retries and resumes too) as far as packing and parallelism allow."""
        for name in current.stop:
            paused = fleet.state(name).phase == Phase.PAUSED
            fleet.stop(name)
            how = "while paused (not promoted)" if paused else "early (it checkpoints first)"
            self.display.message(f"{name}: stopped {how}")
        for name in current.pause:
            if fleet.pause(name):
                self.display.message(f"{name}: paused (it checkpoints first)")
        for name in current.retry:
            fleet.retry(name)
            self.display.message(f"{name}: failed; retrying")
        exploits = {e.name: e for e in current.exploit}
        for name in current.resume:
            if name in exploits:
                exploit_trial(fleet, exploits[name], self.display.message)
            elif fleet.resume(name):
                self.display.message(f"{name}: promoted; resuming from its checkpoint")
        for trial in current.create:
            record = TrialRecord(
                name=trial.name,
                index=trial.index,
                seed_index=trial.seed_index,
                seed=trial.seed,
                parameters=trial.parameters,
                backend=fleet.placed_on.value,
                labels=trial.labels,
            )
            manifest = trial_manifest(trial, fleet.placed_on)
            fleet.create(self.layout.trial(trial.name), record, manifest)
        if current.move and not self.warned_moves:
            self.warned_moves = True
            self.display.message(
                "burst placement moves trials between clusters; "
                "`rlops run` keeps every trial on its --backend"
            )
        fleet.launch_pending()

    def _finish(self, fleet: Fleet, status: SweepStatus, interrupted: bool) -> int:
        self.tracking.sweep(fleet, status, final=True)
        self.tracking.close()
        self.display.update(
            View(title=f"sweep {self.name}", rows=rows(fleet), status=status.message or "")
        )
        self.display.close()
        extra = {
            name: {
                "iterations": t.progress.last.iteration if t.progress.last else 0,
                "timesteps": t.progress.last.timesteps if t.progress.last else 0,
                "runDir": str(t.run_dir),
                "initialParameters": initial_parameters(t.record),
            }
            for name, t in fleet.trials.items()
        }
        entries = write_results(self.layout, self.name, self.spec, status, fleet.states(), extra)
        if self.options.report and entries:
            index = make_report(self.layout.root)
            self.display.message(f"report: {index}")
        self.display.leaderboard(
            f"{self.name}: {status.phase.value} - {status.message}",
            leaderboard(self.spec, fleet.states()),
            self.spec.objective.metric,
        )
        self.display.message(f"results: {self.layout.root}")
        if interrupted:
            return INTERRUPTED
        return 0 if status.phase == SweepPhase.SUCCEEDED else 1
