"""The one experiment lifecycle (`rlops.lifecycle.decide`), as a table.

Each row is a phase of the status, the requests (attempt, stop, pause) and what the backend
observes, and the step that must follow: submit, end with a checkpoint (stop, pause, a
newer attempt), cancel or nothing, with the phase and message. The rows include the paths
the driver tests pin (pause at a rung, a job that ended itself at its pause point, a
requeue, retry after Failed, forgotten jobs, a RayJob that lingers until deleted). A
product over every phase x request x observation then checks the rules that hold always.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rlops.api import BackendRef, Phase, RLExperimentStatus
from rlops.lifecycle import Action, Observation, Requests, decide, ended_phase, refused

REF = BackendRef(kind="SlurmJob", job_id="7", cluster="hpc")


def status(phase: Phase, attempts: int = 1, message: str | None = None) -> RLExperimentStatus:
    ref = REF if attempts else None
    return RLExperimentStatus(phase=phase, attempts=attempts, backend_ref=ref, message=message)


def job(phase: Phase, attempt: int = 1, **kw: Any) -> Observation:
    terminal = phase.finished or phase is Phase.PAUSED
    fields: dict[str, Any] = {"name": "job 7", "attempt": attempt, "terminal": terminal, **kw}
    return Observation(phase, f"job {phase}", **fields)


def rayjob(phase: Phase, attempt: int = 1, **kw: Any) -> Observation:
    return job(phase, attempt, name="RayJob cp", lingers=True, **kw)


STOP, PAUSE = Requests(stop="by sweep"), Requests(pause="at a rung")
P = Phase
Row = tuple[str, RLExperimentStatus, Requests, Observation | None, Action, Phase | None, str | None]
# fmt: off
ROWS: list[Row] = [
    # name, status, requests, observation -> action, phase (None: tracks or stays), message
    ("new experiment is submitted", status(P.PENDING, 0), Requests(), None,
     Action.SUBMIT, P.SUBMITTED, None),
    ("running job is followed", status(P.SUBMITTED), Requests(), job(P.RUNNING),
     Action.NOTHING, None, None),
    ("stop ends a running job", status(P.RUNNING), STOP, job(P.RUNNING),
     Action.END, P.STOPPED, "stopped: by sweep"),
    ("stop of a paused experiment", status(P.PAUSED), STOP, None,
     Action.END, P.STOPPED, "stopped: by sweep"),
    ("a stop wins over a pause", status(P.RUNNING),
     Requests(stop="s", pause="p"), job(P.RUNNING), Action.END, P.STOPPED, "stopped: s"),
    ("stopped for good: never submitted again", status(P.STOPPED),
     Requests(attempt=2, stop="s"), None, Action.NOTHING, None, None),
    ("succeeded stays", status(P.SUCCEEDED), Requests(), None, Action.NOTHING, None, None),
    ("failed run still holding resources is cancelled", status(P.FAILED), Requests(),
     Observation(P.FAILED, "x", terminal=False), Action.CANCEL, None, None),
    ("retry after Failed", status(P.FAILED), Requests(attempt=2), None,
     Action.SUBMIT, P.SUBMITTED, None),
    ("retry after Failed waits for its RayJob to go", status(P.FAILED), Requests(attempt=2),
     rayjob(P.FAILED), Action.END, P.SUBMITTED, "replacing attempt 1"),
    ("newer attempt ends the running one", status(P.RUNNING), Requests(attempt=2),
     job(P.RUNNING), Action.END, P.SUBMITTED, "replacing attempt 1"),
    ("a job is asked to end once for a newer attempt",
     status(P.SUBMITTED, message="replacing attempt 1"), Requests(attempt=2), job(P.RUNNING),
     Action.NOTHING, P.SUBMITTED, "replacing attempt 1"),
    ("a lingering RayJob is deleted again", status(P.SUBMITTED, message="replacing attempt 1"),
     Requests(attempt=2), rayjob(P.RUNNING), Action.END, P.SUBMITTED, "replacing attempt 1"),
    ("one being deleted is not", status(P.SUBMITTED, message="replacing attempt 1"),
     Requests(attempt=2), rayjob(P.RUNNING, ending=True), Action.NOTHING, P.SUBMITTED,
     "replacing attempt 1"),
    ("newer attempt once the old job ended", status(P.RUNNING), Requests(attempt=2),
     job(P.FAILED), Action.SUBMIT, P.SUBMITTED, None),
    ("work of the requested attempt is followed", status(P.SUBMITTED, 1), Requests(attempt=2),
     job(P.RUNNING, attempt=2), Action.NOTHING, None, None),
    ("pause at a rung ends the run", status(P.RUNNING), PAUSE, job(P.RUNNING),
     Action.END, P.PAUSED, "paused: at a rung"),
    ("pause before anything runs", status(P.SUBMITTED), PAUSE, None,
     Action.END, P.PAUSED, "paused: at a rung"),
    ("a run that ended itself at its pause point keeps its outcome", status(P.RUNNING), PAUSE,
     job(P.SUCCEEDED), Action.NOTHING, None, None),
    ("a failure stands over a pause", status(P.RUNNING), PAUSE, job(P.FAILED),
     Action.NOTHING, None, None),
    ("paused stays paused", status(P.PAUSED), PAUSE, None,
     Action.NOTHING, P.PAUSED, "paused: at a rung"),
    ("paused: its lingering RayJob is deleted again", status(P.PAUSED), PAUSE,
     rayjob(P.RUNNING), Action.END, P.PAUSED, "paused: at a rung"),
    ("paused: its ending job is signalled once", status(P.PAUSED), PAUSE, job(P.RUNNING),
     Action.NOTHING, P.PAUSED, "paused: at a rung"),
    ("resume waits for the paused job", status(P.PAUSED), Requests(), job(P.RUNNING),
     Action.NOTHING, P.PAUSED, "resuming once job 7 has ended"),
    ("resume waits for the paused RayJob to go", status(P.PAUSED), Requests(),
     rayjob(P.RUNNING, ending=True), Action.NOTHING, P.PAUSED,
     "resuming once RayJob cp has ended"),
    ("resume submits the same attempt", status(P.PAUSED, 2), Requests(attempt=2),
     job(P.PAUSED, attempt=2), Action.SUBMIT, P.SUBMITTED, None),
    ("requeued job (pending again) is followed", status(P.RUNNING, 2), Requests(),
     job(P.PENDING, retries=1), Action.NOTHING, None, None),
    ("forgotten: expected work is gone", status(P.RUNNING), Requests(), None,
     Action.NOTHING, P.FAILED, "its run was deleted before the experiment finished"),
    ("forgotten SLURM job: its result decides", status(P.RUNNING), Requests(),
     job(P.SUCCEEDED), Action.NOTHING, None, None),
    ("failed run that still holds resources is cancelled", status(P.RUNNING), Requests(),
     Observation(P.FAILED, "deadline", terminal=False, lingers=True), Action.CANCEL, None,
     None),
]
# fmt: on


@pytest.mark.parametrize(
    ("current", "requests", "work", "action", "phase", "message"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_the_lifecycle_table(
    current: RLExperimentStatus,
    requests: Requests,
    work: Observation | None,
    action: Action,
    phase: Phase | None,
    message: str | None,
) -> None:
    step = decide(current, requests, work, submitted=current.backend_ref is not None)
    assert step.action is action
    assert step.phase is phase
    if message is not None:
        assert step.message == message
    if phase is None and action is not Action.CANCEL and work is not None:
        assert step.track or current.phase.finished


def test_resume_and_retry_submit_the_attempts_they_should() -> None:
    resumed = decide(status(P.PAUSED, 2), Requests(attempt=1), None, submitted=True)
    assert (resumed.attempt, resumed.resumed) == (2, True)  # the same attempt, not a retry
    retried = decide(status(P.FAILED, 1), Requests(attempt=3), None, submitted=True)
    assert (retried.attempt, retried.resumed) == (3, False)


def test_refused_before_submit_is_failed_with_its_reason() -> None:
    step = refused("invalid RLExperiment: spec.stop is required")
    assert (step.action, step.phase, step.finish) == (Action.NOTHING, P.FAILED, True)
    assert step.message == "invalid RLExperiment: spec.stop is required"


REQUESTS = [Requests(), Requests(attempt=2), STOP, PAUSE, Requests(stop="s", pause="p")]
WORK: list[Observation | None] = [None, *(job(p) for p in Phase), *(rayjob(p) for p in Phase)]


@pytest.mark.parametrize("phase", list(Phase))
def test_rules_that_hold_for_every_request_and_observation(phase: Phase) -> None:
    for requests, work in itertools.product(REQUESTS, WORK):
        current = status(phase)
        step = decide(current, requests, work, submitted=True)
        case = f"{phase} {requests} {work}"
        if requests.stop is not None:
            assert step.action is not Action.SUBMIT, case  # a stop is for good
            if not phase.finished:
                assert (step.phase, step.action) == (P.STOPPED, Action.END), case
        if requests.pause is not None and requests.stop is None:
            assert step.action is not Action.SUBMIT, case  # nothing runs while paused
        if phase.finished and requests.attempt <= current.attempts:
            assert step.action in (Action.NOTHING, Action.CANCEL), case
        if step.action is Action.SUBMIT:
            assert work is None or not work.blocks, case  # never two runs at once
            assert step.attempt is not None and step.attempt >= requests.attempt, case


RUNNER_ROWS = [
    # the runner's record of an ended launch -> the trial's phase
    (job(P.SUCCEEDED), Requests(), P.SUCCEEDED),
    (job(P.SUCCEEDED), STOP, P.SUCCEEDED),  # it succeeded first
    (job(P.FAILED), STOP, P.STOPPED),
    (job(P.PAUSED), STOP, P.STOPPED),
    (job(P.PAUSED), PAUSE, P.PAUSED),  # ended at its pause point
    (job(P.PAUSED), Requests(), P.PENDING),  # requeued or interrupted: resumes
    (job(P.FAILED), PAUSE, P.FAILED),  # a failure stands over a pause
    (job(P.PENDING), STOP, P.STOPPED),  # never launched
    (job(P.PENDING), PAUSE, P.PAUSED),
    (Observation(P.RUNNING, "running"), STOP, P.RUNNING),
]


@pytest.mark.parametrize(("work", "requests", "phase"), RUNNER_ROWS)
def test_the_phase_of_an_ended_run(work: Observation, requests: Requests, phase: Phase) -> None:
    assert ended_phase(work, requests) is phase
