"""The line queue on real Redis: a freed trunk line goes to the oldest high-priority waiter,
whichever process asks first; normal jobs never starve; a dead waiter loses its place."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from ttsqueue.domain import Priority
from ttsqueue.store.keys import Keys
from ttsqueue.worker.trunk import TrunkGuard

FAST = 1_000_000.0  # calls per second high enough not to matter
HIGH, NORMAL = Priority.HIGH, Priority.NORMAL


async def grant_order(guard: TrunkGuard, waiters: dict[str, Priority], holder: str) -> list[str]:
    """Free the one line again and again; each time every waiter asks, newest first (so the
    asking order never favours the head), and the one that got the line is noted."""
    order: list[str] = []
    left = dict(waiters)
    while left:
        await guard.release(holder)
        granted = [w for w in reversed(left) if await guard.try_acquire(w, left[w])]
        assert len(granted) == 1, granted  # one line: one grant per release
        holder = granted[0]
        order.append(holder)
        del left[holder]
    return order


async def test_a_freed_line_goes_to_the_oldest_high_waiter_across_processes(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    first = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    second = TrunkGuard(other_client, keys, max_calls=1, calls_per_second=FAST)
    assert await first.try_acquire("busy")
    waiters = {"n1": NORMAL, "n2": NORMAL, "h1": HIGH, "n3": NORMAL, "h2": HIGH}
    for lease_id, priority in waiters.items():
        guard = first if lease_id.endswith("1") else second
        assert not await guard.try_acquire(lease_id, priority)
    assert await first.waiting() == {HIGH: ["h1", "h2"], NORMAL: ["n1", "n2", "n3"]}
    assert await grant_order(second, waiters, "busy") == ["h1", "h2", "n1", "n2", "n3"]
    assert await first.waiting() == {HIGH: [], NORMAL: []}
    assert await first.active() == 1


async def test_free_lines_go_to_as_many_waiters_from_the_head(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=3, calls_per_second=FAST)
    for lease_id in ("a", "b", "c"):
        assert await guard.try_acquire(lease_id)
    for lease_id, priority in (("n1", NORMAL), ("n2", NORMAL), ("h1", HIGH)):
        assert not await guard.try_acquire(lease_id, priority)
    await guard.release("a")
    await guard.release("b")
    # Two lines free: the two at the head of the line (h1, then n1) may take them; n2 not.
    assert not await guard.try_acquire("n2", NORMAL)
    assert await guard.try_acquire("n1", NORMAL)
    assert await guard.try_acquire("h1", HIGH)
    assert not await guard.try_acquire("n2", NORMAL)


async def test_normal_jobs_get_a_line_after_a_bounded_streak_of_alerts(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST, high_streak=3)
    assert await guard.try_acquire("busy")
    waiters = {"n1": NORMAL, "n2": NORMAL}
    waiters |= {f"h{i}": HIGH for i in range(1, 8)}
    for lease_id, priority in waiters.items():
        assert not await guard.try_acquire(lease_id, priority)
    order = await grant_order(guard, waiters, "busy")
    assert order == ["h1", "h2", "h3", "n1", "h4", "h5", "h6", "n2", "h7"]


async def test_a_streak_counts_only_while_a_normal_job_waits(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST, high_streak=2)
    assert await guard.try_acquire("busy")
    alone = {f"h{i}": HIGH for i in range(1, 4)}
    for lease_id in alone:
        assert not await guard.try_acquire(lease_id, HIGH)
    holder = (await grant_order(guard, alone, "busy"))[-1]
    # Three alerts went through with nobody else waiting: a newcomer still waits its turn.
    late = {"n1": NORMAL, "h4": HIGH, "h5": HIGH}
    for lease_id, priority in late.items():
        assert not await guard.try_acquire(lease_id, priority)
    assert await grant_order(guard, late, holder) == ["h4", "h5", "n1"]


async def test_a_waiter_that_stops_asking_loses_its_place(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    crashed = TrunkGuard(other_client, keys, max_calls=1, calls_per_second=FAST, waiter_ttl_s=3.0)
    alive = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST, waiter_ttl_s=3.0)
    assert await alive.try_acquire("busy")
    assert not await crashed.try_acquire("alert-of-a-dead-worker", HIGH)  # never asks again
    assert not await alive.try_acquire("normal-call", NORMAL)
    await alive.release("busy")
    # The line is kept for the high waiter while it may still be alive, then reclaimed.
    assert not await alive.try_acquire("normal-call", NORMAL)
    await asyncio.wait_for(alive.acquire("normal-call", NORMAL), timeout=10)
    assert await alive.waiting() == {HIGH: [], NORMAL: []}
    assert await redis_client.zrange(keys.call_slots, 0, -1) == ["normal-call"]


async def test_a_canceled_waiter_leaves_the_line(redis_client: aioredis.Redis, keys: Keys) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    assert await guard.try_acquire("busy")
    waiter = asyncio.create_task(guard.acquire("alert", HIGH))

    for _ in range(1000):  # until the waiter has asked once (10 s at most)
        if (await guard.waiting())[HIGH] == ["alert"]:
            break
        await asyncio.sleep(0.01)
    assert (await guard.waiting())[HIGH] == ["alert"]
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await guard.waiting() == {HIGH: [], NORMAL: []}
    await guard.release("busy")
    assert await guard.try_acquire("next", NORMAL)


async def test_the_rate_limit_applies_to_the_head_of_the_line(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=3, calls_per_second=0.1)
    assert await guard.try_acquire("first")  # the next origination waits 10 s
    assert not await guard.try_acquire("alert", HIGH)
    assert await guard.active() == 1
    assert await guard.waiting() == {HIGH: ["alert"], NORMAL: []}


async def test_a_free_line_with_nobody_waiting_is_granted_without_queueing(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=2, calls_per_second=FAST)
    assert await guard.try_acquire("a")
    assert await guard.try_acquire("b", HIGH)
    # Granted at once: nothing was written to the line's queue, not even an arrival.
    assert not await redis_client.exists(
        keys.line_arrivals, keys.line_waiters_high, keys.line_waiters_normal
    )
    assert not await guard.try_acquire("w")  # both lines busy: w queues
    await guard.release("a")
    # A line is free but w waits: a normal newcomer queues behind w instead of taking it.
    assert not await guard.try_acquire("late")
    assert await guard.waiting() == {HIGH: [], NORMAL: ["w", "late"]}
    assert await guard.try_acquire("w")
    assert await guard.waiting() == {HIGH: [], NORMAL: ["late"]}
    assert await guard.active() == 2
