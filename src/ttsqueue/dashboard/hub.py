"""Pushes the system's state to every open page.

Two loops: one follows the Redis pub/sub channel on which every status change is published
(the Lua scripts publish it in the same step as the change); the other builds a snapshot at
most every `MIN_GAP_S` when something changed, and at least every `PERIOD_S` (heartbeats and
queue depths change without events). Each message carries the snapshot, the events since the
previous one, and the recent jobs under the subscriber's filter. No page: no work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from ttsqueue.dashboard.snapshot import RecentFilter, SnapshotBuilder
from ttsqueue.dashboard.subscribers import EventRates, Subscriber
from ttsqueue.errors import StoreError, StoreUnavailableError
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.dashboard")

MIN_GAP_S = 0.25
PERIOD_S = 2.0
MAX_EVENTS = 500
RESUBSCRIBE_S = 1.0


class Hub:
    def __init__(self, builder: SnapshotBuilder, redis: aioredis.Redis, channel: str) -> None:
        self.builder = builder
        self.redis = redis
        self.channel = channel
        self.rates = EventRates()
        self._subscribers: set[Subscriber] = set()
        self._pending: list[dict[str, Any]] = []
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="dashboard-events"),
            asyncio.create_task(self._tick(), name="dashboard-snapshots"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        for sub in self._subscribers:
            sub.offer(None)

    def subscribe(self, flt: RecentFilter) -> Subscriber:
        sub = Subscriber(flt)
        self._subscribers.add(sub)
        self._dirty.set()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    # Loops ---------------------------------------------------------------------------------
    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=PERIOD_S)
                    if message is not None and message["type"] == "message":
                        self._on_event(message["data"])
            except StoreError as exc:
                log.warning("event stream interrupted", error=repr(exc))
            finally:
                with contextlib.suppress(StoreError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
            self._dirty.set()
            await asyncio.sleep(RESUBSCRIBE_S)

    def _on_event(self, data: str | bytes) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        self.rates.record(event, time.monotonic())
        self._pending.append(event)
        if len(self._pending) > MAX_EVENTS:
            del self._pending[: len(self._pending) - MAX_EVENTS]
        self._dirty.set()

    async def _tick(self) -> None:
        last = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), PERIOD_S)
            wait = MIN_GAP_S - (time.monotonic() - last)
            if wait > 0:
                await asyncio.sleep(wait)
            self._dirty.clear()
            events, self._pending = self._pending, []
            last = time.monotonic()
            if not self._subscribers:
                continue
            try:
                await self._broadcast(events)
            except Exception:
                log.exception("snapshot failed")

    async def _broadcast(self, events: list[dict[str, Any]]) -> None:
        snapshot = await self.builder.build()
        snapshot["rates"] = self.rates.per_second(time.monotonic())
        snapshot["events"] = events
        by_filter: dict[RecentFilter, bytes] = {}
        for sub in list(self._subscribers):
            if sub.filter not in by_filter:
                by_filter[sub.filter] = orjson.dumps(
                    {**snapshot, "recent": await self._recent(sub.filter, snapshot)}
                )
            sub.offer(by_filter[sub.filter])

    async def _recent(self, flt: RecentFilter, snapshot: dict[str, Any]) -> list[Any] | None:
        if snapshot["health"]["redis"] != "up":
            return None
        try:
            return await self.builder.recent(flt)
        except (StoreUnavailableError, TimeoutError):
            return None

    async def snapshot_once(self, flt: RecentFilter) -> dict[str, Any]:
        """A snapshot outside the push loop (for `GET /api/snapshot`)."""
        snapshot = await self.builder.build()
        snapshot["rates"] = self.rates.per_second(time.monotonic())
        snapshot["events"] = []
        snapshot["recent"] = await self._recent(flt, snapshot)
        return snapshot
