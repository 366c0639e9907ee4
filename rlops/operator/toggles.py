"""kopf's readiness toggles, woken only when their sum changes.

Before any handler runs, kopf waits until every object of an indexed resource is indexed: one
toggle per object in a `ToggleSet`, dropped once that object is indexed, and every object's
worker waiting for the set to be on. kopf 1.45 wakes every waiter at every drop, so a start-up
with N existing objects makes N² wake-ups (on two cores, 4,700 of 40,000 objects indexed after
3 minutes). Waiters only wait for the set's sum (`all` of its toggles) to reach a state, so
waking them when that sum changes is enough: N wake-ups in all. `install()` makes kopf's
`ToggleSet` do that; the toggles' own `turn_to` is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from kopf._cogs.aiokits import aiotoggles


async def _make_toggle(
    self: aiotoggles.ToggleSet, __val: bool = False, *, name: str | None = None
) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        was = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != was:
            self._condition.notify_all()
    return toggle


async def _drop_toggles(self: aiotoggles.ToggleSet, toggles: Iterable[aiotoggles.Toggle]) -> None:
    async with self._condition:
        was = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != was:
            self._condition.notify_all()


async def _drop_toggle(self: aiotoggles.ToggleSet, toggle: aiotoggles.Toggle) -> None:
    await _drop_toggles(self, (toggle,))


def install() -> None:
    """Make kopf's toggle sets wake their waiters only when their sum changes (idempotent)."""
    aiotoggles.ToggleSet.make_toggle = _make_toggle  # type: ignore[method-assign]
    aiotoggles.ToggleSet.drop_toggle = _drop_toggle  # type: ignore[method-assign]
    aiotoggles.ToggleSet.drop_toggles = _drop_toggles  # type: ignore[method-assign]
