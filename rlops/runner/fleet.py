"""The trials of one `rlops run`: their run directories, records and processes.

The fleet is the only part of the runner that writes trial records, and it writes
them before it acts (a launch is recorded before the process starts, an early stop
or a pause before the signal), so a runner killed at any moment leaves files that
tell the next one what to do.

A pause ends a trial as a stop does (the signal, a checkpoint, exit 75), but leaves it
Paused rather than Stopped; a resume makes it Pending again, and its next launch
continues the same attempt from that checkpoint in the same run directory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rlops.api import Backend, Exploit, Phase, ResourcesSpec, RLExperiment, RLExperimentSpec
from rlops.api.experiment import BackendRef
from rlops.api.runinfo import (
    PAUSED_REASON,
    PROGRESS_FILE,
    SPEC_FILE,
    ProgressTail,
    RunFileError,
    RunResult,
    read_result,
)
from rlops.backends.base import (
    ExperimentBackend,
    Observation,
    Refused,
    Submission,
    ref_id,
    work_key,
)
from rlops.runner.layout import Launch, TrialRecord, read_record, write_record, write_yaml
from rlops.runner.state import ended_launch, next_launch_kind, trial_state
from rlops.sweep import TrialState

log = logging.getLogger("rlops.runner")


@dataclass(frozen=True)
class Work:
    """A running launch of a trial: the experiment submitted and the backend's reference."""

    experiment: RLExperiment
    ref: BackendRef


@dataclass
class Trial:
    run_dir: Path
    record: TrialRecord
    resources: ResourcesSpec
    progress: ProgressTail
    result: RunResult | None = None
    result_mtime: int = -1
    work: Work | None = None  # its running launch
    stop_sent: bool = False  # Its process was asked to end: a stop, pause or Ctrl-C.
    pause_at: int | None = None  # The running launch's pause point, if it has one.
    problem: str | None = None  # A run file it cannot read: the trial is Failed with it.

    def observe(self) -> None:
        """Read new progress and a new result.json; a file that cannot be read (a FIFO, a
        directory) fails this trial alone, with the reason, and is not read again."""
        if self.problem is not None:
            return
        try:
            self.progress.refresh()
            self.read_result()
        except (RunFileError, OSError) as exc:
            self.problem = f"{self.run_dir.name}: {exc}"
            log.warning("trial %s failed: %s", self.record.name, self.problem)

    def read_result(self) -> None:
        path = self.run_dir / "result.json"
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self.result_mtime:
            self.result, self.result_mtime = read_result(self.run_dir), mtime


class Fleet:
    """Trials by name; launches, observes and stops them through an `ExperimentBackend`."""

    def __init__(
        self,
        backend: ExperimentBackend,
        metric: str,
        parallelism: int | None = None,
        pause_point: Callable[[TrialState], int | None] | None = None,
    ) -> None:
        """`pause_point`: the iteration at which a launch of the trial should checkpoint
        and end as paused by itself (ASHA's promotion variant: its rung), if any."""
        self.backend = backend
        self.metric = metric
        self.parallelism = parallelism
        self.pause_point = pause_point
        self.trials: dict[str, Trial] = {}
        self.unreadable: dict[str, str] = {}  # run directory -> why its trial was left out

    @property
    def placed_on(self) -> Backend:
        """The backend its trials run on (their placement)."""
        return self.backend.backend

    # --- registering -----------------------------------------------------------------

    def load(self, run_dir: Path) -> Trial | None:
        """Register a trial that exists on disk (from an earlier run). One whose trial.json
        or spec.yaml is torn, empty or unreadable is left out (in `unreadable`, with the
        reason) and the run goes on; a new record in its directory resumes its checkpoints."""
        try:
            record = read_record(run_dir)
            if record is None:
                return None
            spec = _read_spec(run_dir)
        except (ValueError, TypeError, KeyError, OSError) as exc:
            why = f"{type(exc).__name__}: {str(exc)[:300]}"
            self.unreadable[str(run_dir)] = why
            log.warning("left out %s: its trial files are unreadable (%s)", run_dir, why)
            return None
        return self._register(run_dir, record, spec)

    def create(self, run_dir: Path, record: TrialRecord, manifest: dict[str, Any]) -> Trial:
        """Write a new trial's spec.yaml and record, and register it."""
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / SPEC_FILE, manifest)
        write_record(run_dir, record)
        spec = RLExperimentSpec.model_validate(manifest["spec"])
        return self._register(run_dir, record, spec)

    def _register(self, run_dir: Path, record: TrialRecord, spec: RLExperimentSpec) -> Trial:
        self.backend.check(record.name, spec.resources)
        trial = Trial(
            run_dir, record, spec.resources, ProgressTail(run_dir / PROGRESS_FILE, keep=True)
        )
        trial.observe()
        self.trials[record.name] = trial
        return trial

    # --- observing -------------------------------------------------------------------

    def refresh(self) -> dict[str, Observation]:
        """Collect ended launches (recording how they ended) and read new progress."""
        running = {work_key(t.work.experiment): (t, t.work) for t in self.trials.values() if t.work}
        seen = self.backend.observe([(w.experiment, w.ref) for _, w in running.values()])
        ended: dict[str, Observation] = {}
        for key, work in seen.items():
            if work is None or not work.terminal or key not in running:
                continue
            trial = running[key][0]
            ended[trial.record.name] = work
            launch = trial.record.launches[-1]
            launch.outcome, launch.exit_code = work.phase.value, work.exit_code
            launch.ended_at = time.time()
            trial.work, trial.stop_sent = None, False
            write_record(trial.run_dir, trial.record)
        for trial in self.trials.values():
            trial.observe()
        for name in ended:
            self._paused_itself(self.trials[name])
        return ended

    def _paused_itself(self, trial: Trial) -> None:
        """A launch that ended at its pause point is Paused, as if `pause` had asked."""
        record, result = trial.record, trial.result
        if record.pause_requested or record.stop_requested or result is None:
            return
        if result.stop_reason == PAUSED_REASON and result.attempt == record.launches[-1].attempt:
            record.pause_requested = True
            write_record(trial.run_dir, record)

    def state(self, name: str) -> TrialState:
        t = self.trials[name]
        state = trial_state(
            t.record,
            t.result,
            t.progress.records,
            running=t.work is not None,
            metric=self.metric,
            stop_sent=t.stop_sent and not t.record.pause_requested,
        )
        if t.problem is not None and t.work is None and not state.phase.finished:
            return replace(state, phase=Phase.FAILED)
        return state

    def states(self) -> list[TrialState]:
        return [self.state(name) for name in self.trials]

    @property
    def running(self) -> list[Trial]:
        return [t for t in self.trials.values() if t.work is not None]

    # --- acting ----------------------------------------------------------------------

    def launch_pending(self, names: Iterable[str] | None = None) -> list[str]:
        """Start Pending trials in order (index, seed) while there is room, handing them to
        the backend together (SLURM submits a round as one job array)."""
        order = sorted(
            (self.trials[n] for n in (names if names is not None else self.trials)),
            key=lambda t: (t.record.index, t.record.seed_index, t.record.name),
        )
        room = len(order) if self.parallelism is None else self.parallelism - len(self.running)
        room = max(0, room)
        chosen = [t for t in order if self.state(t.record.name).phase == Phase.PENDING][:room]
        submissions = [self._submission(trial) for trial in chosen]
        started = []
        # A shorter answer: no room for the next one (first come, first served).
        answers = self.backend.submit_many(submissions)
        for trial, submission, answer in zip(chosen, submissions, answers, strict=False):
            if isinstance(answer, Refused):
                raise answer  # A trial no retry would start: the run stops with the reason.
            self._record_launch(trial, submission, answer)
            started.append(trial.record.name)
        return started

    def _submission(self, trial: Trial) -> Submission:
        """The trial's next launch, of the spec in its run directory (an exploit rewrites it)."""
        record = trial.record
        return Submission(
            experiment=_read_experiment(trial.run_dir),
            attempt=max((launch.attempt for launch in record.launches), default=0) + 1,
            previous=tuple(x.ref for x in record.launches if ended_launch(x) and x.ref),
            run_dir=trial.run_dir,
            pause_at=self.pause_point(self.state(record.name)) if self.pause_point else None,
        )

    def _record_launch(self, trial: Trial, submission: Submission, ref: BackendRef) -> None:
        record = trial.record
        kind = next_launch_kind(record)
        record.launches.append(Launch(attempt=submission.attempt, kind=kind,
                                      started_at=time.time(), ref=ref_id(ref)))  # fmt: skip
        record.retry_pending = False
        write_record(trial.run_dir, record)
        trial.work, trial.pause_at = Work(submission.experiment, ref), submission.pause_at

    def retry(self, name: str) -> None:
        """Run a Failed trial again as its next attempt (a pause it failed during is over)."""
        trial = self.trials[name]
        trial.record.retry_pending = True
        trial.record.pause_requested = False
        write_record(trial.run_dir, trial.record)

    def stop(self, name: str) -> None:
        """Stop for good (early stopping, sweep finished): it checkpoints and stays Stopped.
        A Paused trial has no process: it is Stopped at once."""
        trial = self.trials[name]
        if trial.record.stop_requested and (trial.work is None or trial.stop_sent):
            return
        trial.record.stop_requested = True
        write_record(trial.run_dir, trial.record)
        self._signal_end(trial)

    def pause(self, name: str) -> bool:
        """Checkpoint and end a Running trial, as a stop does, but Paused: not finished, and
        not launched again until `resume`. A Pending one is Paused without running; a Failed
        one waiting for its retry is left to it. False when there was nothing to pause."""
        trial = self.trials[name]
        record = trial.record
        if record.pause_requested or record.retry_pending or not self.state(name).active:
            return False
        record.pause_requested = True
        write_record(trial.run_dir, record)
        self._signal_end(trial)
        return True

    def resume(self, name: str) -> bool:
        """Make a Paused trial Pending again: its next launch continues the same attempt
        from its checkpoint (launch_pending starts it when there is room). False when it
        was not paused."""
        trial = self.trials[name]
        record = trial.record
        if not record.pause_requested or self.state(name).phase.finished:
            return False
        record.pause_requested = False
        record.promotions += 1
        write_record(trial.run_dir, record)
        return True

    def exploit(self, name: str, exploit: Exploit, manifest: dict[str, Any]) -> bool:
        """pbt: record the exploit (its parameters become the trial's), write the trial's new
        spec (its runtime copies the source's checkpoint in before it trains) and resume it."""
        trial = self.trials[name]
        record = trial.record
        if not record.pause_requested or self.state(name).phase.finished:
            return False
        if record.initial_parameters is None:
            record.initial_parameters = dict(record.parameters)
        record.exploits.append(exploit)
        record.parameters = dict(exploit.parameters)
        write_yaml(trial.run_dir / SPEC_FILE, manifest)
        write_record(trial.run_dir, record)
        return self.resume(name)

    def _signal_end(self, trial: Trial) -> None:
        """Ask its process, if any, to checkpoint and end (once: a second signal aborts the
        checkpoint). One that has reported its pause point checkpoints and ends by itself
        and is not signalled: the signal would cross its exit."""
        work = trial.work
        if work is None or trial.stop_sent:
            return
        last = trial.progress.last
        if trial.pause_at is None or last is None or last.iteration < trial.pause_at:
            self.backend.end(work.experiment, work.ref,
                             "pause" if trial.record.pause_requested else "stop")  # fmt: skip
        trial.stop_sent = True

    def interrupt(self) -> None:
        """Stop every process so that it resumes next time (Ctrl-C). One being paused was
        signalled already; marked interrupted too, it stays Paused however it ends."""
        for trial in self.running:
            if trial.work is None or (trial.stop_sent and not trial.record.pause_requested):
                continue
            trial.record.launches[-1].interrupted = True
            write_record(trial.run_dir, trial.record)
            self._signal_end(trial)

    def kill(self) -> None:
        """End every process now, without a checkpoint (a second Ctrl-C)."""
        for trial in self.running:
            if trial.work is not None:
                self.backend.cancel(trial.work.experiment, trial.work.ref)


def _read_spec(run_dir: Path) -> RLExperimentSpec:
    import yaml

    manifest = yaml.safe_load((run_dir / SPEC_FILE).read_text())
    return RLExperimentSpec.model_validate(manifest["spec"])


def _read_experiment(run_dir: Path) -> RLExperiment:
    import yaml

    return RLExperiment.model_validate(yaml.safe_load((run_dir / SPEC_FILE).read_text()))
