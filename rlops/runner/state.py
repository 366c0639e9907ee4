"""What a trial's files say about it: its phase, attempts, objective and history.

Pure functions of the runner's record (trial.json), the runtime's result.json and
progress records, and whether a process of ours is running it right now.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlops.api import Backend, Phase
from rlops.api.runinfo import ExitCode, ProgressRecord, RunResult
from rlops.backends.base import exit_observation
from rlops.lifecycle import Observation, Requests, ended_phase, metric_value
from rlops.runner.layout import Launch, TrialRecord
from rlops.sweep import TrialState


def ended_launch(launch: Launch) -> bool:
    """The runner saw the launch end (its backend's observation, or an exit status)."""
    return launch.outcome is not None or launch.exit_code is not None


def last_exit(record: TrialRecord, result: RunResult | None) -> int | None:
    """Exit code of the latest launch, for a record without its backend's observation of
    how it ended (written before launches recorded one, or the runner died with it): as
    the runner saw it, else as result.json tells.

    None when the launch never ended in a way anyone recorded (the runner was killed
    and the trial process with it): the trial resumes from its checkpoint. A process
    killed by a signal after it wrote result.json ended as that result says.
    """
    if not record.launches:
        return None
    last = record.launches[-1]
    own_result = result is not None and result.attempt == last.attempt
    if last.exit_code is not None and (last.exit_code >= 0 or not own_result):
        return last.exit_code
    # Killed by a signal after it wrote its result (e.g. Ctrl-C while Ray shut down):
    # what it finished stands.
    if result is not None and own_result:
        return result.exit_code
    return last.exit_code


def launch_observation(record: TrialRecord, result: RunResult | None, running: bool) -> Observation:
    """The latest launch as the lifecycle sees it: running, not launched, or ended as its
    backend observed it (`Launch.outcome`: succeeded, ended at a checkpoint, failed); a
    launch interrupted by Ctrl-C that did not succeed ended at a checkpoint. A record
    without an outcome reads the exit code (`last_exit`)."""
    if running:
        return Observation(Phase.RUNNING, "running")
    if not record.launches:
        return Observation(Phase.PENDING, "not launched")
    last = record.launches[-1]
    if last.outcome is not None:
        phase = Phase(last.outcome)
        if phase is not Phase.SUCCEEDED and last.interrupted:
            phase = Phase.PAUSED
        return Observation(phase, last.outcome, terminal=True, exit_code=last.exit_code)
    code = last_exit(record, result)
    if code is None or (code != ExitCode.SUCCEEDED and last.interrupted):
        return Observation(Phase.PAUSED, "ended at a checkpoint", terminal=True)
    return exit_observation(code)


def trial_phase(record: TrialRecord, result: RunResult | None, running: bool) -> Phase:
    """The phase its files give, by the lifecycle's rule for an ended run: a stop or a
    pause is recorded before the signal, so an ended process whose record asks for one
    ended by it (or the runner died meanwhile)."""
    if record.retry_pending and not running:
        return Phase.PENDING
    requests = Requests(
        stop="stop" if record.stop_requested else None,
        pause="pause" if record.pause_requested else None,
    )
    return ended_phase(launch_observation(record, result, running), requests)


def attempts(launches: Sequence[Launch]) -> int:
    """Attempts as maxAttempts counts them: requeues continue an attempt, retries start one."""
    return 1 + sum(1 for launch in launches if launch.kind == "retry")


def next_launch_kind(record: TrialRecord) -> str:
    """retry starts an attempt; resume continues one (after a requeue or a pause)."""
    if record.retry_pending:
        return "retry"
    return "resume" if record.launches else "start"


def history(progress: Sequence[ProgressRecord], metric: str) -> tuple[tuple[int, float], ...]:
    return tuple(
        (p.iteration, value) for p in progress if (value := metric_value(p, metric)) is not None
    )


def objective(
    phase: Phase, result: RunResult | None, progress: Sequence[ProgressRecord], metric: str
) -> float | None:
    """The final objective of a finished run: result.json's, else the last progress value."""
    if phase not in (Phase.SUCCEEDED, Phase.STOPPED):
        return None
    if metric == "episode_return_mean" and result and result.episode_return_mean is not None:
        return result.episode_return_mean
    points = history(progress, metric)
    return points[-1][1] if points else None


def trial_state(
    record: TrialRecord,
    result: RunResult | None,
    progress: Sequence[ProgressRecord],
    running: bool,
    metric: str,
    stop_sent: bool = False,
) -> TrialState:
    phase = trial_phase(record, result, running)
    return TrialState(
        name=record.name,
        index=record.index,
        seed_index=record.seed_index,
        parameters=record.parameters,
        phase=phase,
        backend=Backend(record.backend),
        attempts=attempts(record.launches),
        objective=objective(phase, result, progress, metric),
        history=history(progress, metric),
        stop_requested=stop_sent or record.stop_requested,
        pause_requested=record.pause_requested,
        promotions=record.promotions,
        exploits=tuple(record.exploits),
    )
