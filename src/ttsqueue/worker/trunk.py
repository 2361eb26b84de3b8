"""Trunk lines shared by every worker process, granted in priority order.

A Redis semaphore of expiring call leases (MAX_CONCURRENT_CALLS), a minimum spacing between new
originations (CALLS_PER_SECOND), and a line queue: a job that finds every line busy registers
as a waiter, and a freed line goes to the oldest high-priority waiter first, then the oldest
normal one, whichever worker holds them. After `high_streak` high-priority grants in a row
while a normal job waited, the oldest normal waiter goes first once, so normal jobs never
starve under a flood of alerts.

Every check and the grant run in one Lua script (store/lua/line_*.lua), so two processes can
never both take the last line or the same rate token. Times come from the Redis server clock.
A lease that is not renewed expires, so a worker that dies frees its lines; a waiter that stops
asking loses its place after `waiter_ttl_s`, so a dead worker's waiters never hold the queue.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from ttsqueue.domain import Priority
from ttsqueue.errors import StoreError
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import load_script

log = get_logger("ttsqueue.worker.trunk")

# Redis down, timing out, or refusing the write (READONLY, OOM): the lease just expires.
_RELEASE_ERRORS: tuple[type[Exception], ...] = (StoreError,)
# Next in line: ask often, so a freed line is taken within a few tens of milliseconds.
POLL_MIN_S = 0.01
POLL_MAX_S = 0.04
# Further back: ask less often (each ask also keeps the place in line).
POLL_BACK_S = 0.25
HIGH_STREAK = 8
WAITER_TTL_S = 5.0


@dataclass(slots=True)
class Lease:
    lease_id: str
    # Set when a renewal found the lease expired and every line taken by others.
    lost: bool = False


@dataclass(frozen=True, slots=True)
class _Answer:
    held: bool
    rate_wait_s: float  # > 0: a line is ours once the rate allows
    behind: int  # lines that must free before our turn


class TrunkGuard:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        max_calls: int,
        calls_per_second: float,
        lease_s: float = 30.0,
        *,
        high_streak: int = HIGH_STREAK,
        waiter_ttl_s: float = WAITER_TTL_S,
    ) -> None:
        if max_calls < 1 or calls_per_second <= 0 or lease_s <= 0:
            raise ValueError("max_calls >= 1, calls_per_second > 0 and lease_s > 0 required")
        if high_streak < 1 or waiter_ttl_s <= POLL_BACK_S:
            raise ValueError(f"high_streak >= 1 and waiter_ttl_s > {POLL_BACK_S} required")
        self._keys = keys
        self._max_calls = max_calls
        self._interval_ms = 1000.0 / calls_per_second
        self._lease_s = lease_s
        self._high_streak = high_streak
        self._waiter_ttl_ms = round(waiter_ttl_s * 1000)
        self._acquire = load_script(redis, "line_acquire")
        self._renew = load_script(redis, "line_renew")
        self._active = load_script(redis, "line_active")
        self._leave = load_script(redis, "line_leave")
        self._redis = redis

    @property
    def limit(self) -> int:
        return self._max_calls

    async def active(self) -> int:
        """Live leases across all processes (expired ones excluded)."""
        return int(await self._active(keys=[self._keys.call_slots]))

    async def waiting(self) -> dict[Priority, list[str]]:
        """Lease ids waiting for a line, in arrival order, by priority."""
        high = await self._redis.zrange(self._keys.line_waiters_high, 0, -1)
        normal = await self._redis.zrange(self._keys.line_waiters_normal, 0, -1)
        return {Priority.HIGH: [str(x) for x in high], Priority.NORMAL: [str(x) for x in normal]}

    async def try_acquire(self, lease_id: str, priority: Priority = Priority.NORMAL) -> bool:
        """One attempt; True when `lease_id` now holds a line (again, if it already did).
        When False, `lease_id` keeps its place in line for `waiter_ttl_s`."""
        return (await self._attempt(lease_id, priority)).held

    async def acquire(self, lease_id: str, priority: Priority = Priority.NORMAL) -> None:
        """Wait in line, without blocking the loop, until a line and a rate token are ours."""
        try:
            while not (answer := await self._attempt(lease_id, priority)).held:
                if answer.rate_wait_s > 0:
                    pause = answer.rate_wait_s + random.uniform(0, POLL_MIN_S)
                elif answer.behind <= 1:
                    pause = random.uniform(POLL_MIN_S, POLL_MAX_S)
                else:
                    pause = random.uniform(POLL_MAX_S, POLL_BACK_S)
                await asyncio.sleep(pause)
        except BaseException:
            # Canceled, or Redis failed: leave the line (the script may have granted the
            # lease just before the reply was lost).
            await self._release_quietly(lease_id)
            raise

    async def renew(self, lease_id: str) -> bool:
        args: list[str | int] = [lease_id, self._lease_ms, self._max_calls]
        return int(await self._renew(keys=[self._keys.call_slots], args=args)) == 1

    async def release(self, lease_id: str) -> None:
        """Give up the line, or the place in line."""
        k = self._keys
        keys = [k.call_slots, k.line_waiters_high, k.line_waiters_normal, k.line_waiters_alive]
        await self._leave(keys=keys, args=[lease_id])

    @asynccontextmanager
    async def slot(
        self, lease_id: str, priority: Priority = Priority.NORMAL
    ) -> AsyncIterator[Lease]:
        """Hold a line for the body's duration, renewing the lease in the background."""
        await self.acquire(lease_id, priority)
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

    async def _attempt(self, lease_id: str, priority: Priority) -> _Answer:
        k = self._keys
        keys = [
            k.call_slots,
            k.call_rate,
            k.line_waiters_high,
            k.line_waiters_normal,
            k.line_waiters_alive,
            k.line_arrivals,
            k.line_high_streak,
        ]
        args: list[str | int] = [
            lease_id,
            self._lease_ms,
            self._max_calls,
            repr(self._interval_ms),
            "high" if priority is Priority.HIGH else "normal",
            self._waiter_ttl_ms,
            self._high_streak,
        ]
        held, wait_ms, behind = await self._acquire(keys=keys, args=args)
        return _Answer(int(held) == 1, int(wait_ms) / 1000, int(behind))

    async def _release_quietly(self, lease_id: str) -> None:
        try:
            await self.release(lease_id)
        except _RELEASE_ERRORS as exc:
            log.warning(
                "trunk lease not released, it will expire", lease_id=lease_id, error=repr(exc)
            )

    async def _keep_alive(self, lease: Lease) -> None:
        """Renew until cancelled. Any failure (Redis down, READONLY, OOM, a timeout, anything
        else) is logged and the next renewal tried: this task must outlive the call."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                held = await self.renew(lease.lease_id)
            except Exception as exc:
                log.warning("trunk lease not renewed", lease_id=lease.lease_id, error=repr(exc))
                continue
            if not held and not lease.lost:
                log.warning("trunk lease expired and its line was taken", lease_id=lease.lease_id)
            lease.lost = not held
