"""Convoy: callers held until their window closes or it fills, then let go in one turn."""

from __future__ import annotations

import asyncio

import pytest

from ttsqueue.broker.convoy import Convoy

# Long enough that no test below reaches it unless it is meant to.
NEVER_S = 3600.0


async def turns(n: int = 20) -> None:
    """Let the event loop run `n` turns."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_callers_wait_until_the_convoy_fills_then_leave_together() -> None:
    convoy = Convoy(NEVER_S, 3)
    left: list[int] = []

    async def caller(n: int) -> None:
        await convoy.join()
        left.append(n)

    first = [asyncio.create_task(caller(n)) for n in (1, 2)]
    await turns()
    assert left == []
    assert not any(task.done() for task in first)
    last = asyncio.create_task(caller(3))
    await asyncio.wait_for(asyncio.gather(*first, last), 5)
    assert sorted(left) == [1, 2, 3]


async def test_a_convoy_leaves_when_its_window_closes() -> None:
    convoy = Convoy(0.05, 1000)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(asyncio.gather(convoy.join(), convoy.join()), 5)
    # The window is timed from the first caller: never shorter.
    assert loop.time() - started >= 0.05 - 0.005


async def test_callers_after_a_departure_form_the_next_convoy() -> None:
    convoy = Convoy(NEVER_S, 2)
    await asyncio.wait_for(asyncio.gather(convoy.join(), convoy.join()), 5)
    late = asyncio.create_task(convoy.join())
    await turns()
    assert not late.done()  # alone in a new convoy: it waits for a second caller
    await asyncio.wait_for(asyncio.gather(convoy.join(), late), 5)


async def test_a_cancelled_caller_does_not_hold_back_or_cancel_the_others() -> None:
    convoy = Convoy(NEVER_S, 3)
    quitter = asyncio.create_task(convoy.join())
    staying = asyncio.create_task(convoy.join())
    await turns()
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    await turns()
    assert not staying.done()
    # The cancelled caller still counted: one more fills the convoy.
    await asyncio.wait_for(asyncio.gather(convoy.join(), staying), 5)


async def test_a_convoy_of_one_does_not_wait() -> None:
    convoy = Convoy(NEVER_S, 1)
    await asyncio.wait_for(convoy.join(), 5)


@pytest.mark.parametrize(("window_s", "size"), [(0.0, 4), (-1.0, 4), (0.05, 0)])
def test_a_convoy_needs_a_window_and_a_size(window_s: float, size: int) -> None:
    with pytest.raises(ValueError, match="positive window and size"):
        Convoy(window_s, size)
