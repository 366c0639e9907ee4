"""kstatus conditions (Ready, Reconciling, Stalled) and their transition times.

One rule for the RLExperiment and the Sweep: Ready is True only when it succeeded,
Stalled only when it failed, Reconciling while it is on its way. A Paused experiment is
none of them (all False, reason Paused): nothing is in progress, and it waits for its
sweep. A condition keeps its lastTransitionTime while its status does not change, so
rewriting the same status is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlops.api.experiment import Phase
from rlops.api.meta import Condition

ACTIVE = (Phase.PENDING, Phase.SUBMITTED, Phase.RUNNING)


def kstatus_conditions(
    *, ready: bool, reconciling: bool, stalled: bool, reason: str, message: str,
    generation: int | None,
) -> list[Condition]:  # fmt: skip
    """Ready, Reconciling and Stalled with one reason and message."""

    def condition(kind: str, value: bool) -> Condition:
        return Condition(
            type=kind,
            status="True" if value else "False",
            reason=reason,
            message=message,
            observed_generation=generation,
        )

    return [
        condition("Ready", ready),
        condition("Reconciling", reconciling),
        condition("Stalled", stalled),
    ]


def experiment_conditions(phase: Phase, message: str, generation: int | None) -> list[Condition]:
    return kstatus_conditions(
        ready=phase is Phase.SUCCEEDED,
        reconciling=phase in ACTIVE,
        stalled=phase is Phase.FAILED,
        reason=phase.value,
        message=message,
        generation=generation,
    )


def stamp_transitions(
    new: Sequence[Condition], old: Sequence[Condition], now: str
) -> list[Condition]:
    """`new` with lastTransitionTime kept from `old` where the status is unchanged."""
    before = {c.type: c for c in old}
    stamped = []
    for condition in new:
        previous = before.get(condition.type)
        if previous is not None and previous.status == condition.status:
            when = previous.last_transition_time or now
        else:
            when = now
        stamped.append(condition.model_copy(update={"last_transition_time": when}))
    return stamped
