"""Trunk protection shared by every worker process: a Redis semaphore of expiring call leases
plus a minimum spacing between new originations (CALLS_PER_SECOND).

Both checks and the acquisition run in one Lua script, so two processes can never both take
the last slot or the same rate token. Times come from the Redis server clock, which every
process shares. A lease that is not renewed expires, so a worker that dies frees its slots.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from ttsqueue.dialer.trunk_lua import ACQUIRE, ACTIVE, RENEW
from ttsqueue.errors import StoreError
from ttsqueue.store.keys import Keys

log = logging.getLogger("ttsqueue.dialer")

# Redis down, timing out, or refusing the write (READONLY, OOM): the lease just expires.
_RELEASE_ERRORS: tuple[type[Exception], ...] = (StoreError,)
POLL_MIN_S = 0.02
POLL_MAX_S = 0.1


@dataclass(slots=True)
class Lease:
    lease_id: str
    # Set when a renewal found the lease expired and every slot taken by others.
    lost: bool = False


class TrunkGuard:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        max_calls: int,
        calls_per_second: float,
        lease_s: float = 30.0,
    ) -> None:
        if max_calls < 1 or calls_per_second <= 0 or lease_s <= 0:
            raise ValueError("max_calls >= 1, calls_per_second > 0 and lease_s > 0 required")
        self._keys = keys
        self._max_calls = max_calls
        self._interval_ms = 1000.0 / calls_per_second
        self._lease_s = lease_s
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)
        self._active = redis.register_script(ACTIVE)
        self._redis = redis

    @property
    def limit(self) -> int:
        return self._max_calls

    async def active(self) -> int:
        """Live leases across all processes (expired ones excluded)."""
        return int(await self._active(keys=[self._keys.call_slots]))

    async def try_acquire(self, lease_id: str) -> bool:
        """One attempt; True when `lease_id` now holds a slot (again, if it already did)."""
        return await self._attempt(lease_id) == 0.0

    async def acquire(self, lease_id: str) -> None:
        """Wait, without blocking the loop, until both a slot and a rate token are ours."""
        try:
            while (wait_s := await self._attempt(lease_id)) != 0.0:
                if wait_s < 0:
                    wait_s = random.uniform(POLL_MIN_S, POLL_MAX_S)
                else:
                    wait_s += random.uniform(0, POLL_MIN_S)
                await asyncio.sleep(wait_s)
        except asyncio.CancelledError:
            # The script may have taken the slot just before the reply was abandoned.
            await self._release_quietly(lease_id)
            raise

    async def renew(self, lease_id: str) -> bool:
        args: list[str | int] = [lease_id, self._lease_ms, self._max_calls]
        return int(await self._renew(keys=[self._keys.call_slots], args=args)) == 1

    async def release(self, lease_id: str) -> None:
        await self._redis.zrem(self._keys.call_slots, lease_id)

    @asynccontextmanager
    async def slot(self, lease_id: str) -> AsyncIterator[Lease]:
        """Hold a slot for the body's duration, renewing the lease in the background."""
        await self.acquire(lease_id)
        lease = Lease(lease_id)
        renewer = asyncio.create_task(self._keep_alive(lease), name=f"lease-{lease_id}")
        try:
            yield lease
        finally:
            renewer.cancel()
            await asyncio.wait([renewer])
            await self._release_quietly(lease_id)

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self._lease_s * 1000))

    async def _attempt(self, lease_id: str) -> float:
        """0.0 when held, else seconds to wait (-1.0: slots full, poll)."""
        keys = [self._keys.call_slots, self._keys.call_rate]
        args: list[str | int] = [lease_id, self._lease_ms, self._max_calls, repr(self._interval_ms)]
        held, wait_ms = await self._acquire(keys=keys, args=args)
        if int(held) == 1:
            return 0.0
        return int(wait_ms) / 1000 if int(wait_ms) > 0 else -1.0

    async def _release_quietly(self, lease_id: str) -> None:
        try:
            await self.release(lease_id)
        except _RELEASE_ERRORS as exc:
            log.warning("trunk lease %s not released (%s); it will expire", lease_id, exc)

    async def _keep_alive(self, lease: Lease) -> None:
        """Renew until cancelled. Any failure (Redis down, READONLY, OOM, a timeout, anything
        else) is logged and the next renewal tried: this task must outlive the call."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                held = await self.renew(lease.lease_id)
            except Exception as exc:
                log.warning("trunk lease %s not renewed: %r", lease.lease_id, exc)
                continue
            if not held and not lease.lost:
                log.warning("trunk lease %s expired and its slot was taken", lease.lease_id)
            lease.lost = not held
