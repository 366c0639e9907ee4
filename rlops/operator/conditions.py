"""kstatus conditions (Ready, Reconciling, Stalled) and their transition times.

Ready is True only for a Succeeded experiment, Stalled only for a Failed one,
Reconciling while it is on its way. A Paused experiment is none of them (all
False, reason Paused): nothing is in progress, and it waits for its sweep. A
condition keeps its lastTransitionTime while its status does not change, so
rewriting the same status is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence

from rlops.api import Condition, Phase

ACTIVE = (Phase.PENDING, Phase.SUBMITTED, Phase.RUNNING)


def experiment_conditions(phase: Phase, message: str, generation: int | None) -> list[Condition]:
    def condition(kind: str, value: bool) -> Condition:
        return Condition(
            type=kind,
            status="True" if value else "False",
            reason=phase.value,
            message=message,
            observed_generation=generation,
        )

    return [
        condition("Ready", phase is Phase.SUCCEEDED),
        condition("Reconciling", phase in ACTIVE),
        condition("Stalled", phase is Phase.FAILED),
    ]


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
