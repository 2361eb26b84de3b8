"""Trunk protection on real Redis: the limits hold across coroutines and across processes."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
import redis.asyncio as aioredis

from ttsqueue.asterisk_servers import DEFAULT_SERVER
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import CallClaim, ClaimRequest, JobLifecycle
from ttsqueue.worker.trunk import TrunkGuard

FAST = 1_000_000.0  # calls per second high enough not to matter


class Peak:
    """Concurrent holders observed inside the guarded section."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.done = 0

    async def hold(self, guard: TrunkGuard, lease_id: str, seconds: float) -> None:
        async with guard.slot(lease_id):
            self.now += 1
            self.peak = max(self.peak, self.now)
            await asyncio.sleep(seconds)
            self.now -= 1
            self.done += 1


async def test_concurrent_calls_never_exceed_the_limit(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=3, calls_per_second=FAST)
    seen = Peak()
    await asyncio.gather(*(seen.hold(guard, f"call-{i}", 0.2) for i in range(12)))
    assert seen.done == 12
    assert seen.peak == 3
    assert await guard.active() == 0
    assert guard.limit == 3


async def test_two_processes_share_one_limit(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    first = TrunkGuard(redis_client, keys, max_calls=2, calls_per_second=FAST)
    second = TrunkGuard(other_client, keys, max_calls=2, calls_per_second=FAST)
    seen = Peak()
    await asyncio.gather(
        *(seen.hold(first, f"a-{i}", 0.15) for i in range(5)),
        *(seen.hold(second, f"b-{i}", 0.15) for i in range(5)),
    )
    assert seen.done == 10
    assert seen.peak == 2

    assert await second.try_acquire("b-held-1")
    assert await second.try_acquire("b-held-2")
    assert await first.active() == 2
    assert not await first.try_acquire("a-waiting")
    await second.release("b-held-1")
    assert await first.try_acquire("a-waiting")


async def test_a_vanished_holder_frees_its_slot_when_the_lease_expires(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    dead = TrunkGuard(other_client, keys, max_calls=1, calls_per_second=FAST, lease_s=0.3)
    assert await dead.try_acquire("dead-worker-call")  # never renewed, never released
    alive = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    assert not await alive.try_acquire("new-call")
    await asyncio.wait_for(alive.acquire("new-call"), timeout=10)
    assert await redis_client.zrange(keys.call_slots, 0, -1) == ["new-call"]
    assert await alive.active() == 1
    await alive.release("new-call")


async def test_a_held_slot_is_renewed_beyond_its_lease(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    holder = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST, lease_s=0.3)
    other = TrunkGuard(other_client, keys, max_calls=1, calls_per_second=FAST)
    async with holder.slot("long-call") as lease:
        await asyncio.sleep(1.0)  # more than three leases
        assert not await other.try_acquire("other-call")
        assert not lease.lost
    assert await other.try_acquire("other-call")


async def test_a_slot_is_released_when_the_body_fails(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    held: list[int] = []

    async def failing_call() -> None:
        async with guard.slot("failing-call"):
            held.append(await guard.active())
            raise RuntimeError("dial failed")

    with pytest.raises(RuntimeError, match="dial failed"):
        await failing_call()
    assert held == [1]
    assert await guard.active() == 0


async def test_originations_are_spaced_by_the_rate_limit(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=10, calls_per_second=5)
    started = time.monotonic()
    await asyncio.gather(*(guard.acquire(f"call-{i}") for i in range(10)))
    elapsed = time.monotonic() - started
    assert elapsed >= 1.8 - 0.01  # 9 gaps of 200 ms at least (a bound, not a speed target)
    entries = await redis_client.zrange(keys.call_rate, 0, -1, withscores=True)
    times = [float(entry[1]) for entry in entries]
    assert len(times) == 10
    assert min(b - a for a, b in itertools.pairwise(times)) >= 200 - 0.01
    assert await guard.active() == 10


async def test_acquiring_the_same_lease_twice_counts_once(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=2, calls_per_second=0.1)
    assert await guard.try_acquire("redelivered-call")
    # A new origination would have to wait 10 s for a rate token; re-attaching needs none.
    assert await guard.try_acquire("redelivered-call")
    assert await guard.active() == 1
    assert await redis_client.zcard(keys.call_rate) == 1


async def test_waiting_for_a_slot_does_not_block_other_coroutines(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    assert await guard.try_acquire("busy-call")
    waiter = asyncio.create_task(guard.acquire("waiting-call"))
    ticks = 0
    for _ in range(10):
        await asyncio.sleep(0.02)
        ticks += 1
    assert ticks == 10
    assert not waiter.done()
    await guard.release("busy-call")
    await asyncio.wait_for(waiter, timeout=10)
    assert await redis_client.zrange(keys.call_slots, 0, -1) == ["waiting-call"]


async def test_limits_must_be_positive(redis_client: aioredis.Redis, keys: Keys) -> None:
    with pytest.raises(ValueError, match="max_calls"):
        TrunkGuard(redis_client, keys, max_calls=0, calls_per_second=5)


async def test_renewal_takes_back_an_expired_lease_only_if_a_slot_is_free(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    assert await guard.try_acquire("stalled-call")
    await redis_client.zadd(keys.call_slots, {"stalled-call": 1})  # expired long ago
    assert await guard.renew("stalled-call")
    assert await guard.active() == 1

    await redis_client.zadd(keys.call_slots, {"stalled-call": 1})
    assert await guard.try_acquire("newer-call")
    assert not await guard.renew("stalled-call")
    assert await redis_client.zrange(keys.call_slots, 0, -1) == ["newer-call"]


async def test_a_handed_over_line_is_left_to_the_ending_step(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """The job's ending step gives the line up in its own write: the slot does not."""
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    async with guard.slot("ending-call") as lease:
        assert lease.hand_over() == (lease.server, "ending-call")
        assert lease.hand_over() == (lease.server, "ending-call")  # asked again: the same
    assert await redis_client.zrange(keys.call_slots, 0, -1) == ["ending-call"]
    await guard.release("ending-call")


async def test_a_handed_over_line_is_released_when_the_body_fails(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """The ending step may not have been written: the slot gives the line up itself."""
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    handed: list[object] = []

    async def failing_ending() -> None:
        async with guard.slot("failing-ending") as lease:
            handed.append(lease.hand_over())
            raise RuntimeError("ending not written")

    with pytest.raises(RuntimeError, match="ending not written"):
        await failing_ending()
    assert handed == [(DEFAULT_SERVER, "failing-ending")]
    assert await guard.active() == 0


async def test_a_handed_over_line_is_no_longer_renewed(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """A renewal after the ending's release would take the line back: renewing stops."""
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST, lease_s=0.3)
    async with guard.slot("short-call") as lease:
        await asyncio.sleep(0.5)  # renewed at least once meanwhile
        assert lease.hand_over() is not None
        await redis_client.zrem(keys.call_slots, "short-call")  # what the ending step does
        await asyncio.sleep(0.5)  # more than one renewal period
        assert await guard.active() == 0
    assert await guard.active() == 0


async def test_a_call_shorter_than_a_third_of_its_lease_runs_no_renewal_task(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """The first renewal is a timer: a call that ends before it costs no task."""
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST, lease_s=30)
    tasks_before = len(asyncio.all_tasks())
    async with guard.slot("brief-call") as lease:
        assert len(asyncio.all_tasks()) == tasks_before
        assert lease.hand_over() is not None
    assert lease.renewer is None
    assert len(asyncio.all_tasks()) == tasks_before
    await guard.release("brief-call")


async def test_a_line_is_not_handed_over_while_a_renewal_is_on_its_way(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    async with guard.slot("renewing-call") as lease:
        lease.renewing = True  # what the renewer marks while its write is out
        assert lease.hand_over() is None
        lease.renewing = False
    assert await guard.active() == 0  # the slot released it as before


async def test_a_claim_asked_with_a_free_line_is_taken_in_the_same_step(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    lifecycle = JobLifecycle(redis_client, keys, 3600)
    guard = TrunkGuard(redis_client, keys, max_calls=2, calls_per_second=FAST)
    first = lifecycle.claim_request("job-1", 1, "worker-a@1.0", refuse_listed="+573005050149")
    async with guard.slot("call-1", claim=lambda: first) as lease:
        assert lease.claim is not None
        assert lifecycle.claim_taken(first, lease.claim) == CallClaim(True)
        assert await redis_client.get(keys.attempt("job-1", 1)) == "worker-a@1.0"
    # The same attempt asked again (a redelivery): the earlier claim is found and followed.
    again = lifecycle.claim_request("job-1", 1, "worker-b@2.0", refuse_listed="+573005050149")
    async with guard.slot("call-1-again", claim=lambda: again) as lease:
        assert lease.claim is not None
        assert lifecycle.claim_taken(again, lease.claim) == CallClaim(False, "worker-a@1.0")
    # A listed number: the line is granted, nothing is claimed.
    await redis_client.zadd(keys.dnc, {"+573005550002": 1})
    listed = lifecycle.claim_request("job-2", 1, "worker-a@3.0", refuse_listed="+573005550002")
    async with guard.slot("call-2", claim=lambda: listed) as lease:
        assert lease.claim is not None
        assert lifecycle.claim_taken(listed, lease.claim) == CallClaim(False, listed=True)
        assert await guard.active() == 1
    assert await redis_client.get(keys.attempt("job-2", 1)) is None
    assert await guard.active() == 0


async def test_only_the_ask_that_gets_the_line_takes_its_claim(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """Every line busy: the asks refused meanwhile take nothing; the one that gets the line
    takes the claim it carried (each ask is given a fresh one)."""
    lifecycle = JobLifecycle(redis_client, keys, 3600)
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    assert await guard.try_acquire("busy-call")
    given: list[ClaimRequest] = []

    def fresh_claim() -> ClaimRequest:
        given.append(lifecycle.claim_request("job-3", 1, f"worker-a@{len(given)}"))
        return given[-1]

    async def waiting_call() -> list[object] | None:
        async with guard.slot("waiting-call", claim=fresh_claim) as lease:
            return lease.claim

    waiter = asyncio.create_task(waiting_call())
    await asyncio.sleep(0.3)  # several asks meanwhile, each refused
    assert len(given) >= 2
    assert await redis_client.get(keys.attempt("job-3", 1)) is None
    await guard.release("busy-call")
    reply = await asyncio.wait_for(waiter, timeout=10)
    assert reply is not None
    assert lifecycle.claim_taken(given[-1], reply) == CallClaim(True)
    assert await redis_client.get(keys.attempt("job-3", 1)) == f"worker-a@{len(given) - 1}"


async def test_an_ask_without_a_claim_takes_none(redis_client: aioredis.Redis, keys: Keys) -> None:
    """The policy needs Redis at the moment of the ask (a cap, a closed window): no claim."""
    lifecycle = JobLifecycle(redis_client, keys, 3600)
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    async with guard.slot("capped-call", claim=lambda: None) as lease:
        assert lease.claim is None
    assert await redis_client.get(keys.attempt("job-5", 1)) is None
    assert (await lifecycle.claim_call("job-5", 1, "worker-a@7.0")).claimed


async def test_an_unplaced_claim_is_dropped_only_by_its_owner(
    redis_client: aioredis.Redis, keys: Keys
) -> None:
    """A grant whose reply was lost may have taken its claim: the caller drops it, and only
    its own (a later delivery's claim stays)."""
    lifecycle = JobLifecycle(redis_client, keys, 3600)
    guard = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=FAST)
    mine = lifecycle.claim_request("job-4", 1, "worker-a@5.0")
    async with guard.slot("call-4", claim=lambda: mine):
        pass
    await lifecycle.drop_unplaced_claim(mine)
    assert await redis_client.get(keys.attempt("job-4", 1)) is None
    assert (await lifecycle.claim_call("job-4", 1, "worker-b@6.0")).claimed
    await lifecycle.drop_unplaced_claim(mine)
    assert await redis_client.get(keys.attempt("job-4", 1)) == "worker-b@6.0"
