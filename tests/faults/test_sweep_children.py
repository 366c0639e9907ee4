"""One garbled child RLExperiment (a hand-edited phase, attempts or parameters annotation)
never stops its sweep's plan: it counts as a failed trial of its configuration and the
other trials are planned as before (the pure sweep reconciler)."""

from __future__ import annotations

import pytest

from rlops.api import Phase
from rlops.operator.sweeps import reconcile_sweep, trial_state
from tests.builders import child_trial
from tests.operator.test_sweep_reconcile import NOW, stored_sweep


@pytest.mark.parametrize(
    "garble",
    [
        lambda c: c.setdefault("status", {}).update(phase="Exploded"),
        lambda c: c.setdefault("status", {}).update(attempts="many"),
        lambda c: c["metadata"]["annotations"].update({"rlops.dev/parameters": "{not json"}),
        lambda c: c.setdefault("status", {}).update(result={"finalObjective": "high"}),
    ],
    ids=["phase", "attempts", "parameters", "objective"],
)
def test_a_garbled_child_counts_as_failed_and_the_sweep_goes_on(garble: object) -> None:
    spec = stored_sweep(parallelism=2)
    children = [child_trial(c, phase="Running") for c in reconcile_sweep(spec, [], NOW).create]
    garble(children[0])  # type: ignore[operator]
    state = trial_state(children[0], NOW)
    assert state is not None and state.phase is Phase.FAILED
    actions = reconcile_sweep(spec, children, NOW)
    assert actions.status.trials.running == 1
