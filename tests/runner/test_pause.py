"""Pausing and resuming trials in `rlops run` (ASHA's promotion variant): the phase a
trial's record and its process's end give (Paused, and what stands over a pause), the
fleet's pause / resume / stop-while-paused with a scripted backend (record first, one
signal, no automatic relaunch, a resume is a new launch of the same attempt), records read
back by a new runner, a sweep run carrying out a plan's pauses and resumes, and Paused in
the table and the results. Real training through a pause: test_e2e_pause.py."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from rlops.api import Backend, Phase, ResourcesSpec, Sweep, SweepStatus
from rlops.api.experiment import BackendRef, RLExperiment
from rlops.api.runinfo import PROGRESS_FILE, ExitCode, ProgressRecord, RunResult, progress_line
from rlops.backends.base import (
    EndKind,
    Observation,
    Refused,
    Submission,
    exit_observation,
    work_key,
)
from rlops.runner.display import PlainDisplay, Row, View, trial_table
from rlops.runner.fleet import Fleet
from rlops.runner.layout import Launch, SweepLayout, TrialRecord, read_record
from rlops.runner.results import write_results
from rlops.runner.session import RunnerSettings, RunOptions
from rlops.runner.state import trial_phase, trial_state
from rlops.runner.sweep_run import SweepRun
from rlops.sweep import Plan, TrialState
from tests.builders import experiment, sweep

REQUEUE = int(ExitCode.REQUEUE)


def launch(attempt: int, kind: str = "start", code: int | None = None) -> Launch:
    return Launch(attempt=attempt, kind=kind, started_at=0.0, exit_code=code)


# --- the phase from the record and the process's end ------------------------------------


@pytest.mark.parametrize(
    ("launches", "result", "phase"),
    [
        ([launch(1, code=REQUEUE)], None, Phase.PAUSED),  # Checkpointed on the pause signal.
        ([launch(1, code=0)], None, Phase.SUCCEEDED),  # Reached its budget first.
        ([launch(1, code=1)], None, Phase.FAILED),  # A failure stands.
        # The runner died mid-pause: the process is gone, with or without a result.
        ([launch(1)], None, Phase.PAUSED),
        ([launch(1)], RunResult(status="requeue", exit_code=REQUEUE, attempt=1), Phase.PAUSED),
        ([launch(1)], RunResult(status="succeeded", exit_code=0, attempt=1), Phase.SUCCEEDED),
        # Killed by a second Ctrl-C while it checkpointed for the pause.
        ([launch(1, code=-9).model_copy(update={"interrupted": True})], None, Phase.PAUSED),
        ([], None, Phase.PAUSED),  # Paused before it ever ran.
        # Paused again after a resume: the latest launch decides.
        ([launch(1, code=REQUEUE), launch(2, "resume", REQUEUE)], None, Phase.PAUSED),
    ],
)
def test_a_pause_request_and_the_end_of_the_process_give_the_phase(
    launches: list[Launch], result: RunResult | None, phase: Phase
) -> None:
    record = TrialRecord(name="t", launches=launches, pause_requested=True)
    assert trial_phase(record, result, running=False) == phase


def test_a_trial_being_paused_runs_until_its_process_ends() -> None:
    record = TrialRecord(name="t", launches=[launch(1)], pause_requested=True, promotions=2)
    state = trial_state(record, None, [], running=True, metric="episode_return_mean")
    assert state.phase == Phase.RUNNING
    assert state.pause_requested and not state.stop_requested
    assert state.promotions == 2


def test_a_resumed_trial_is_pending_and_its_attempt_goes_on() -> None:
    record = TrialRecord(name="t", launches=[launch(1, code=REQUEUE)], promotions=1)
    state = trial_state(record, None, [], running=False, metric="episode_return_mean")
    assert (state.phase, state.pause_requested, state.promotions) == (Phase.PENDING, False, 1)
    record.launches += [launch(2, "resume", REQUEUE), launch(3, "resume", 0)]
    state = trial_state(record, None, [], running=False, metric="episode_return_mean")
    assert (state.phase, state.attempts) == (Phase.SUCCEEDED, 1)


@pytest.mark.parametrize("launches", [[launch(1, code=REQUEUE)], [launch(1)], []])
def test_a_stop_wins_over_a_pause(launches: list[Launch]) -> None:
    record = TrialRecord(name="t", launches=launches, pause_requested=True, stop_requested=True)
    assert trial_phase(record, None, running=False) == Phase.STOPPED


def test_a_paused_trial_has_no_objective_yet() -> None:
    record = TrialRecord(name="t", launches=[launch(1, code=REQUEUE)], pause_requested=True)
    result = RunResult(status="requeue", exit_code=REQUEUE, attempt=1, episode_return_mean=50.0)
    state = trial_state(record, result, [], running=False, metric="episode_return_mean")
    assert state.phase == Phase.PAUSED and state.objective is None


# --- the fleet, with a scripted backend --------------------------------------------------


class ScriptedBackend:
    """Processes that end when the test says so (`exit`); it notes submissions and
    signals, and what the trial's record on disk said at each signal."""

    backend = Backend.LOCAL

    def __init__(self) -> None:
        self.started: list[Submission] = []
        self.signalled: list[str] = []
        self.record_at_signal: list[TrialRecord] = []
        self.exits: dict[str, int] = {}

    def check(self, name: str, resources: ResourcesSpec) -> None:
        return None

    def submit(self, submission: Submission) -> BackendRef:
        self.started.append(submission)
        return BackendRef(kind="Process", pid=len(self.started))

    def submit_many(self, submissions: Sequence[Submission]) -> list[BackendRef | Refused]:
        return [self.submit(s) for s in submissions]

    def observe(
        self, work: Sequence[tuple[RLExperiment, BackendRef | None]]
    ) -> dict[str, Observation | None]:
        return {
            work_key(e): exit_observation(self.exits.pop(e.metadata.name or ""))
            for e, _ in work
            if e.metadata.name in self.exits
        }

    def end(self, experiment: RLExperiment, ref: BackendRef | None, kind: EndKind) -> list[str]:
        name = experiment.metadata.name or ""
        self.signalled.append(name)
        run_dir = next(s.run_dir for s in self.started if s.experiment.metadata.name == name)
        assert run_dir is not None
        record = read_record(run_dir)
        assert record is not None
        self.record_at_signal.append(record)
        return [name]

    def cancel(self, experiment: RLExperiment | None, ref: BackendRef | None) -> list[str]:
        assert experiment is not None
        self.signalled.append(f"kill {experiment.metadata.name}")
        return [str(experiment.metadata.name)]

    def close(self) -> None:
        return None

    @property
    def names(self) -> list[str | None]:
        """The trial of each submission, in order."""
        return [s.experiment.metadata.name for s in self.started]

    def exit(self, name: str, code: int) -> None:
        self.exits[name] = code


def add_trial(fleet: Fleet, root: Path, name: str, index: int = 0) -> None:
    record = TrialRecord(name=name, index=index)
    fleet.create(root / name, record, experiment(name).obj())


def write_progress(run_dir: Path, iterations: range, attempt: int) -> None:
    """Iterations as the runtime appends them to progress.jsonl."""
    with (run_dir / PROGRESS_FILE).open("a") as f:
        for i in iterations:
            record = ProgressRecord(
                iteration=i,
                timesteps=100 * i,
                episode_return_mean=10.0 + i,
                time_seconds=float(i),
                timestamp=0.0,
                attempt=attempt,
            )
            f.write(progress_line(record))


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def fleet(backend: ScriptedBackend, tmp_path: Path) -> Fleet:
    fleet = Fleet(backend, "episode_return_mean")
    add_trial(fleet, tmp_path, "t")
    assert fleet.launch_pending() == ["t"]
    return fleet


def paused(fleet: Fleet, backend: ScriptedBackend) -> Fleet:
    fleet.pause("t")
    backend.exit("t", REQUEUE)
    fleet.refresh()
    return fleet


def test_a_pause_is_recorded_then_signalled_once_and_ends_paused_for_good(
    fleet: Fleet, backend: ScriptedBackend
) -> None:
    assert fleet.pause("t")
    assert not fleet.pause("t")  # Asked again before the trial ended: nothing more to do.
    assert backend.signalled == ["t"]
    assert backend.record_at_signal[0].pause_requested
    state = fleet.state("t")
    assert state.phase == Phase.RUNNING and state.pause_requested and not state.stop_requested
    backend.exit("t", REQUEUE)
    fleet.refresh()
    assert fleet.state("t").phase == Phase.PAUSED
    # The requeue exit was the pause, not a preemption: nothing launches it again.
    assert fleet.launch_pending() == []
    assert len(backend.started) == 1
    fleet.pause("t")
    assert backend.signalled == ["t"]


@pytest.mark.parametrize(("code", "phase"), [(0, Phase.SUCCEEDED), (1, Phase.FAILED)])
def test_what_a_trial_being_paused_ended_with_stands(
    fleet: Fleet, backend: ScriptedBackend, code: int, phase: Phase
) -> None:
    fleet.pause("t")
    backend.exit("t", code)
    fleet.refresh()
    assert fleet.state("t").phase == phase
    fleet.resume("t")
    assert fleet.state("t").phase == phase and fleet.state("t").promotions == 0


def test_a_retry_of_a_trial_that_failed_while_pausing_is_not_paused(
    fleet: Fleet, backend: ScriptedBackend
) -> None:
    fleet.pause("t")
    backend.exit("t", 1)
    fleet.refresh()
    fleet.retry("t")
    assert fleet.launch_pending() == ["t"]
    backend.exit("t", REQUEUE)  # Preempted: it runs again.
    fleet.refresh()
    assert fleet.state("t").phase == Phase.PENDING
    assert fleet.state("t").attempts == 2


def test_a_resume_is_a_new_launch_of_the_same_attempt_in_the_same_run_dir(
    fleet: Fleet, backend: ScriptedBackend, tmp_path: Path
) -> None:
    run_dir = tmp_path / "t"
    write_progress(run_dir, range(1, 4), attempt=1)
    paused(fleet, backend)
    fleet.resume("t")
    record = read_record(run_dir)
    assert record is not None and not record.pause_requested and record.promotions == 1
    assert fleet.state("t").phase == Phase.PENDING
    assert fleet.launch_pending() == ["t"]
    first, second = backend.started
    assert second.run_dir == first.run_dir == run_dir
    assert second.attempt == 2 and second.previous == ("1",)
    write_progress(run_dir, range(4, 7), attempt=2)
    backend.exit("t", 0)
    fleet.refresh()
    state = fleet.state("t")
    assert (state.phase, state.attempts, state.promotions) == (Phase.SUCCEEDED, 1, 1)
    assert [x.kind for x in fleet.trials["t"].record.launches] == ["start", "resume"]
    assert [i for i, _ in state.history] == [1, 2, 3, 4, 5, 6]
    assert not fleet.resume("t")  # Not paused: nothing to do.
    assert fleet.state("t").promotions == 1


def test_stopping_a_paused_trial_stops_it_at_once_without_a_signal(
    fleet: Fleet, backend: ScriptedBackend
) -> None:
    paused(fleet, backend)
    fleet.stop("t")
    assert fleet.state("t").phase == Phase.STOPPED
    assert backend.signalled == ["t"]  # Only the pause's.
    assert fleet.launch_pending() == []
    fleet.resume("t")
    assert fleet.state("t").phase == Phase.STOPPED


def test_a_stop_while_pausing_sends_no_second_signal(
    fleet: Fleet, backend: ScriptedBackend
) -> None:
    fleet.pause("t")
    fleet.stop("t")  # A second SIGTERM would abort the checkpoint.
    assert backend.signalled == ["t"]
    backend.exit("t", REQUEUE)
    fleet.refresh()
    assert fleet.state("t").phase == Phase.STOPPED


def test_ctrl_c_while_pausing_leaves_the_trial_paused_however_it_ends(
    fleet: Fleet, backend: ScriptedBackend
) -> None:
    fleet.pause("t")
    fleet.interrupt()
    assert backend.signalled == ["t"]
    fleet.kill()  # Ctrl-C twice.
    backend.exit("t", -9)
    fleet.refresh()
    assert fleet.state("t").phase == Phase.PAUSED


def test_a_new_runner_reads_paused_trials_back(
    fleet: Fleet, backend: ScriptedBackend, tmp_path: Path
) -> None:
    paused(fleet, backend)
    fleet.resume("t")
    fleet.launch_pending()
    fleet.pause("t")  # Signalled; the runner dies before it sees the process end.
    add_trial(fleet, tmp_path, "u", index=1)
    fleet.pause("u")  # Paused before it ever ran.
    again = Fleet(ScriptedBackend(), "episode_return_mean")
    for name in ("t", "u"):
        again.load(tmp_path / name)
    t, u = again.state("t"), again.state("u")
    assert (t.phase, t.pause_requested, t.promotions, t.attempts) == (Phase.PAUSED, True, 1, 1)
    assert (u.phase, u.pause_requested, u.promotions) == (Phase.PAUSED, True, 0)
    assert again.launch_pending() == []


# --- a sweep run carrying out a plan ------------------------------------------------------


class Messages(PlainDisplay):
    def __init__(self) -> None:
        super().__init__(console=Console(file=io.StringIO(), no_color=True))
        self.said: list[str] = []

    def message(self, text: str) -> None:
        self.said.append(text)


def plan(**lists: list[str]) -> Plan:
    return Plan(
        create=[],
        retry=lists.get("retry", []),
        stop=lists.get("stop", []),
        move=[],
        status=SweepStatus(),
        done=False,
        pause=lists.get("pause", []),
        resume=lists.get("resume", []),
    )


def test_a_sweep_run_pauses_and_resumes_within_parallelism(tmp_path: Path) -> None:
    manifest = sweep("s").obj()
    display = Messages()
    run = SweepRun(
        Sweep.model_validate(manifest),
        manifest,
        RunOptions(root=tmp_path),
        RunnerSettings(),
        display,
        lambda lock: ScriptedBackend(),
    )
    backend = ScriptedBackend()
    fleet = Fleet(backend, "episode_return_mean", parallelism=1)
    for i, name in enumerate(("a", "b", "c")):
        add_trial(fleet, SweepLayout(tmp_path / "s").trials, name, index=i)
    fleet.launch_pending()
    fleet.pause("a")
    backend.exit("a", REQUEUE)
    fleet.refresh()
    fleet.launch_pending()  # b runs; a is Paused; c waits.

    run._act(fleet, plan(stop=["c"], pause=["b"], resume=["a"]))
    run._act(fleet, plan(pause=["b"], resume=["a"]))  # Said once, done once.
    assert display.said == [
        "c: stopped early (it checkpoints first)",
        "b: paused (it checkpoints first)",
        "a: promoted; resuming from its checkpoint",
    ]
    assert [s.phase for s in fleet.states()] == [Phase.PENDING, Phase.RUNNING, Phase.STOPPED]
    assert backend.names == [
        "a",
        "b",
    ]  # b still holds the one slot.
    backend.exit("b", REQUEUE)
    fleet.refresh()
    run._act(fleet, plan(stop=["b"]))
    assert display.said[-1] == "b: stopped while paused (not promoted)"
    assert backend.names == ["a", "b", "a"]
    assert [s.phase for s in fleet.states()] == [Phase.RUNNING, Phase.STOPPED, Phase.STOPPED]
    assert fleet.state("a").attempts == 1


# --- display and results ----------------------------------------------------------------


def test_paused_is_shown_as_a_phase() -> None:
    row = Row("t", "lr=0.1", Phase.PAUSED, 1, 20.0, 1000, 3, "local")
    table = io.StringIO()
    Console(file=table, width=120, no_color=True).print(
        trial_table(View(title="s", rows=[row], status=""))
    )
    assert "Paused" in table.getvalue()
    plain = io.StringIO()
    PlainDisplay(console=Console(file=plain, width=200, no_color=True)).update(
        View(title="s", rows=[row], status="")
    )
    assert "t Paused (attempt 1)" in plain.getvalue()


def test_a_paused_trial_is_listed_but_not_scored(tmp_path: Path) -> None:
    spec = Sweep.model_validate(sweep("s").param("lr", "grid", values=[1, 2]).obj()).spec
    trials = [
        TrialState("s-0", 0, 0, {"lr": 1}, Phase.SUCCEEDED, objective=30.0),
        TrialState("s-1", 1, 0, {"lr": 2}, Phase.PAUSED, history=((3, 80.0),), promotions=1),
    ]
    layout = SweepLayout(tmp_path / "s")
    layout.root.mkdir()
    entries = write_results(layout, "s", spec, SweepStatus(), trials, {})
    assert [e.name for e in entries] == ["s-0"]
    rows = json.loads(layout.results.read_text())["trials"]
    assert [(r["phase"], r["objective"], r["promotions"]) for r in rows] == [
        ("Succeeded", 30.0, 0),
        ("Paused", None, 1),
    ]


def write_result(run_dir: Path, result: RunResult) -> None:
    (run_dir / "result.json").write_text(json.dumps(result.model_dump(mode="json")))


def test_a_launch_gets_its_pause_point_and_ending_there_is_a_pause(
    backend: ScriptedBackend, tmp_path: Path
) -> None:
    """The runtime that reached RLOPS_PAUSE_AT_ITERATION ends with exit 75 and stop reason
    paused: the trial is Paused without a pause having been asked, and stays so."""
    fleet = Fleet(backend, "episode_return_mean", pause_point=lambda t: 3 * 3**t.promotions)
    add_trial(fleet, tmp_path, "t")
    fleet.launch_pending()
    assert backend.started[-1].pause_at == 3
    run_dir = tmp_path / "t"
    write_progress(run_dir, range(1, 4), attempt=1)
    write_result(run_dir, RunResult(status="requeue", exit_code=REQUEUE, stop_reason="paused",
                                    iteration=3, attempt=1))  # fmt: skip
    backend.exit("t", REQUEUE)
    fleet.refresh()
    state = fleet.state("t")
    assert (state.phase, state.pause_requested, state.promotions) == (Phase.PAUSED, True, 0)
    assert fleet.launch_pending() == []
    assert fleet.resume("t")
    assert fleet.launch_pending() == ["t"]
    assert backend.started[-1].pause_at == 9  # the next rung


@pytest.mark.parametrize("ask", ["pause", "stop"])
def test_a_launch_that_reported_its_pause_point_is_not_signalled(
    backend: ScriptedBackend, tmp_path: Path, ask: str
) -> None:
    """The engine pauses (or, after the goal, stops) a trial once it reports its rung; the
    runtime, told the same rung, is already checkpointing and ending by itself. A signal
    then would cross its exit: none is sent, and it ends Paused or Stopped all the same.
    One short of its pause point is signalled as before."""
    fleet = Fleet(backend, "episode_return_mean", parallelism=2, pause_point=lambda t: 3)
    add_trial(fleet, tmp_path, "short", index=0)
    add_trial(fleet, tmp_path, "there", index=1)
    assert fleet.launch_pending() == ["short", "there"]
    write_progress(tmp_path / "short", range(1, 3), attempt=1)
    write_progress(tmp_path / "there", range(1, 4), attempt=1)
    fleet.refresh()
    for name in ("short", "there"):
        getattr(fleet, ask)(name)
    assert backend.signalled == ["short"]
    at_rung = RunResult(status="requeue", exit_code=REQUEUE, stop_reason="paused", iteration=3,
                        attempt=1)  # fmt: skip
    write_result(tmp_path / "there", at_rung)
    backend.exit("there", REQUEUE)
    fleet.refresh()
    assert fleet.state("there").phase == (Phase.PAUSED if ask == "pause" else Phase.STOPPED)


def test_a_requeue_that_is_not_a_pause_point_still_runs_again(
    backend: ScriptedBackend, tmp_path: Path
) -> None:
    fleet = Fleet(backend, "episode_return_mean", pause_point=lambda t: 3)
    add_trial(fleet, tmp_path, "t")
    fleet.launch_pending()
    write_result(tmp_path / "t", RunResult(status="requeue", exit_code=REQUEUE, attempt=1))
    backend.exit("t", REQUEUE)
    fleet.refresh()
    assert fleet.state("t").phase == Phase.PENDING
    assert fleet.launch_pending() == ["t"]
