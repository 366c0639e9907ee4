"""kopf's readiness toggles wake their waiters only when the set's sum changes
(rlops.operator.toggles): a start-up with N objects costs N wake-ups, not N²."""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from rlops.operator.toggles import install


def counted(toggles: aiotoggles.ToggleSet) -> list[int]:
    """Count the set's notifications (each wakes every waiter)."""
    calls = [0]
    notify = toggles._condition.notify_all

    def counting() -> None:
        calls[0] += 1
        notify()

    toggles._condition.notify_all = counting  # type: ignore[method-assign]
    return calls


async def test_every_waiter_wakes_once_when_the_last_toggle_drops() -> None:
    install()
    toggles = aiotoggles.ToggleSet(all)
    objects = [await toggles.make_toggle(name=f"object {i}") for i in range(200)]
    notified = counted(toggles)
    done: list[int] = []

    async def worker(i: int) -> None:
        await toggles.wait_for(True)
        done.append(i)

    workers = [asyncio.create_task(worker(i)) for i in range(200)]
    await asyncio.sleep(0)
    for toggle in objects[:-1]:
        await toggles.drop_toggle(toggle)
        assert not done  # still one object to index: nobody may go on
    await toggles.drop_toggle(objects[-1])
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert sorted(done) == list(range(200))
    assert notified[0] == 1  # 199 drops that changed nothing woke nobody


async def test_a_new_unset_toggle_turns_an_on_set_off_and_says_so() -> None:
    install()
    toggles = aiotoggles.ToggleSet(all)
    assert toggles.is_on()  # empty: on
    notified = counted(toggles)
    off = asyncio.create_task(toggles.wait_for(False))
    await asyncio.sleep(0)
    toggle = await toggles.make_toggle(name="late object")
    await asyncio.wait_for(off, 5)
    await toggles.make_toggle(name="another")  # already off: no wake-up
    assert notified[0] == 1
    await toggles.drop_toggles([toggle])
    assert toggles.is_off()  # "another" still holds it off
