"""A real CartPole trial (the real runtime, RLlib PPO, tiny budget) paused and resumed
through the fleet as ASHA's promotion variant does it: paused once it reported two
iterations, it checkpoints and is Paused; resumed, it runs to its budget in the same run
directory as the same attempt, its history going on from the pause."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlops.api import Phase
from rlops.backends.local.executor import LocalBackend
from rlops.backends.packing import Slots
from rlops.runner.fleet import Fleet
from rlops.runner.layout import TrialRecord
from tests.builders import experiment
from tests.waiting import wait_until

pytestmark = pytest.mark.training

ITERATIONS = 10


def test_a_paused_trial_resumes_from_its_checkpoint_and_finishes(tmp_path: Path) -> None:
    manifest = (
        experiment("promoted")
        .config("training", train_batch_size_per_learner=500, minibatch_size=128, num_epochs=2)
        .stop(iterations=ITERATIONS)
        .set("spec.seed", 1)
        .obj()
    )
    backend = LocalBackend(Slots(2, ()))  # The real runtime, each launch with its own Ray.
    fleet = Fleet(backend, "episode_return_mean")
    run_dir = tmp_path / "promoted"
    trial = fleet.create(run_dir, TrialRecord(name="promoted"), manifest)

    def phase_is(*phases: Phase) -> bool:
        fleet.refresh()
        return fleet.state("promoted").phase in phases

    def iterations() -> list[int]:
        return [p.iteration for p in trial.progress.records]

    try:
        assert fleet.launch_pending() == ["promoted"]
        wait_until(lambda: phase_is(Phase.RUNNING) and len(iterations()) >= 2, 300, "2 iterations")
        fleet.pause("promoted")
        wait_until(lambda: not phase_is(Phase.RUNNING), 120, "the paused process to end")
        state = fleet.state("promoted")
        assert state.phase == Phase.PAUSED and state.pause_requested
        paused_at = iterations()[-1]
        assert 2 <= paused_at < ITERATIONS
        assert trial.result is not None and trial.result.exit_code == 75
        checkpoint = trial.result.last_checkpoint
        assert checkpoint and (run_dir / checkpoint).is_dir()  # Relative to the run dir.
        assert trial.result.iteration == paused_at  # Checkpointed where it paused.
        assert fleet.launch_pending() == []  # Paused stays paused until resumed.

        fleet.resume("promoted")
        assert fleet.launch_pending() == ["promoted"]
        wait_until(lambda: phase_is(*(p for p in Phase if p.finished)), 300, "the budget")
    finally:
        backend.close()

    state = fleet.state("promoted")
    assert (state.phase, state.attempts, state.promotions) == (Phase.SUCCEEDED, 1, 1)
    assert iterations() == list(range(1, ITERATIONS + 1))  # Went on from the pause.
    assert [i for i, _ in state.history] == iterations()
    resumed = [p.iteration for p in trial.progress.records if p.attempt == 2]
    assert resumed == list(range(paused_at + 1, ITERATIONS + 1))
    launches = trial.record.launches
    assert [(x.kind, x.attempt, x.exit_code) for x in launches] == [
        ("start", 1, 75),
        ("resume", 2, 0),
    ]
    assert "resuming from" in (run_dir / "attempts" / "2.log").read_text()
