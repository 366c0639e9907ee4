"""The rules of an experiment's life, once: stop, pause, resume, retry, requeue.

`decide` reads the current status, the requests and what the backend observes of the
work (None: the backend holds no work of the experiment), and returns one `Step`. The
rules, in the order they apply:

1. A stop (`rlops.dev/stop`) ends an unfinished experiment for good, with a checkpoint:
   Stopped, `stopped: <reason>`. A stopped experiment is never submitted again; a stop
   wins over a pause.
2. A finished experiment stays as it is unless a newer attempt is requested; what is
   left of a run that did not succeed is cancelled.
3. A pause ends the run with a checkpoint and leaves the experiment Paused (not
   finished), unless the run has already ended by itself, which keeps its outcome. A
   Paused experiment whose pause is lifted waits until its run is gone, then the same
   attempt is submitted again (`resumed`: no retry).
4. A newer attempt than the work's ends that work first ("replacing attempt N-1"), then
   is submitted.
5. Work that is expected but gone (a RayJob deleted by hand) fails the experiment.
6. Otherwise the status follows the observation; a run that failed while its object
   still holds resources is cancelled.

An end is asked once for work that ends itself (a SLURM job, a process): the status
records it. An object that lingers until deleted (a RayJob) is deleted again until its
deletion is under way.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from rlops.api.annotations import (
    ANNOTATION_PAUSE,
    ANNOTATION_STOP,
    pause_message,
    requested_attempt,
    stop_message,
)
from rlops.api.experiment import Phase, RLExperimentStatus
from rlops.lifecycle.observation import Observation


class Action(enum.StrEnum):
    NOTHING = "nothing"
    SUBMIT = "submit"
    END = "end"  # end the run with a checkpoint (stop, pause, or for a newer attempt)
    CANCEL = "cancel"  # release what is left of a run that ended


EndKind = Literal["stop", "pause", "replace"]


@dataclass(frozen=True)
class Requests:
    """What was asked of the experiment: an attempt, a stop, a pause (with reasons)."""

    attempt: int = 1
    stop: str | None = None
    pause: str | None = None

    @classmethod
    def from_annotations(cls, annotations: Mapping[str, str]) -> Requests:
        return cls(
            attempt=requested_attempt(annotations),
            stop=annotations.get(ANNOTATION_STOP),
            pause=annotations.get(ANNOTATION_PAUSE),
        )


@dataclass(frozen=True)
class Step:
    """What to do now and what the status becomes.

    `phase` None: the status follows the observation (`track`) or stays as it is.
    """

    action: Action = Action.NOTHING
    phase: Phase | None = None
    message: str | None = None
    attempt: int | None = None  # the attempt to submit
    resumed: bool = False  # the submission continues a paused attempt
    end: EndKind | None = None
    track: bool = False  # the status follows the observation
    finish: bool = False  # the experiment ends now (completedAt)

    @property
    def ends(self) -> bool:
        return self.action is Action.END

    @property
    def cancels(self) -> bool:
        return self.action in (Action.END, Action.CANCEL)


def refused(message: str) -> Step:
    """Failed before (or at) submission: an invalid spec, an object the API server or the
    scheduler refuses, a batch script that cannot be written."""
    return Step(phase=Phase.FAILED, message=message, finish=True)


def replacing_message(attempt: int) -> str:
    return f"replacing attempt {attempt - 1}"


def decide(
    status: RLExperimentStatus,
    requests: Requests,
    work: Observation | None,
    *,
    submitted: bool,
    expected: str = "its run",
) -> Step:
    """The next step (see the module). `submitted`: the status refers to work of this
    backend; `expected`: how a message names that work when it is gone."""
    phase, requested = status.phase, requests.attempt
    if requests.stop is not None:
        if not phase.finished:
            return Step(Action.END, Phase.STOPPED, stop_message(requests.stop), end="stop",
                        finish=True)  # fmt: skip
        return _finished(status, work)
    if phase.finished and requested <= status.attempts:
        return _finished(status, work)
    ended_itself = work is not None and work.phase.finished
    if phase is Phase.PAUSED or (requests.pause is not None and not ended_itself):
        return _paused(status, requests, work)
    if work is None or work.attempt < requested:
        if work is not None and work.blocks:
            message = replacing_message(requested)
            again = work.lingers or status.message != message
            action = Action.END if again and not work.ending else Action.NOTHING
            return Step(action, Phase.SUBMITTED, message, end="replace")
        if requested > status.attempts or not submitted:
            return Step(Action.SUBMIT, Phase.SUBMITTED, attempt=max(requested, status.attempts, 1))
        if work is None:
            message = f"{expected} was deleted before the experiment finished"
            return Step(phase=Phase.FAILED, message=message, finish=True)
    assert work is not None
    cancel = work.phase.finished and not work.terminal
    return Step(Action.CANCEL if cancel else Action.NOTHING, track=True)


def _finished(status: RLExperimentStatus, work: Observation | None) -> Step:
    """A finished experiment: what is left of a run that did not succeed is cancelled."""
    left = work is not None and not work.terminal and status.phase is not Phase.SUCCEEDED
    return Step(Action.CANCEL if left else Action.NOTHING)


def _paused(status: RLExperimentStatus, requests: Requests, work: Observation | None) -> Step:
    """Pausing, paused or resuming."""
    blocks = work is not None and work.blocks and not work.ending
    if requests.pause is not None:
        # Asked once when the pause is new; an object that lingers, until it is going.
        fresh = status.phase is not Phase.PAUSED
        again = blocks and work is not None and work.lingers
        action = Action.END if fresh or again else Action.NOTHING
        return Step(action, Phase.PAUSED, pause_message(requests.pause), end="pause")
    if work is not None and work.blocks:
        action = Action.END if blocks and work.lingers else Action.NOTHING
        return Step(action, Phase.PAUSED, f"resuming once {work.name} has ended", end="pause")
    attempt = max(requests.attempt, status.attempts, 1)  # the same attempt, not a retry
    return Step(Action.SUBMIT, Phase.SUBMITTED, attempt=attempt, resumed=True)


def ended_phase(work: Observation, requests: Requests) -> Phase:
    """The phase of an experiment whose run `work` describes, under `requests`: the rule
    the runner applies to its own records (the phase of a run that ended, or runs).

    A success stands; a stop makes any other end Stopped; a run that ended at a
    checkpoint (Paused: a requeue, a pause point, an interrupted runner) is Paused while a
    pause holds it, else Pending (it resumes); a failure stands over a pause.
    """
    if work.phase in (Phase.SUCCEEDED, Phase.RUNNING):
        return work.phase
    if requests.stop is not None:
        return Phase.STOPPED
    if work.phase in (Phase.PAUSED, Phase.PENDING):
        return Phase.PAUSED if requests.pause is not None else Phase.PENDING
    return work.phase
