"""A dialer's presence loop ends when cancelled, even when the cancellation lands inside a
Redis command (redis-py's asyncio client can swallow it there: redis/redis-py#2028). Before,
a dialer's aclose() could wait forever for it (seen with both real backends)."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest
import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.dialer.presence import presence_loop
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence, PresenceReport

pytestmark = pytest.mark.timeout(60)


def report(started: asyncio.Event) -> PresenceReport:
    started.set()
    return PresenceReport("w1", "callfile", "connected", time.time())


async def test_a_cancelled_presence_loop_always_ends(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    presence = DialerPresence(redis_client, Keys(settings.REDIS_PREFIX))
    for attempt in range(120):
        started = asyncio.Event()
        snapshot = functools.partial(report, started)
        task = asyncio.create_task(presence_loop(presence, snapshot, asyncio.Event()))
        await started.wait()
        # Land the cancellation at different points of the HSET round trip.
        await asyncio.sleep(0.0003 * (attempt % 8))
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, f"attempt {attempt}: the cancelled loop is still running"
        assert task.cancelled()
