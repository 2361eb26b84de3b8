"""Refuses new jobs while the backlog exceeds MAX_QUEUE_DEPTH (read at most once a second)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from ttsqueue.api.errors import ApiError
from ttsqueue.broker.topology import QueueInspector

REFRESH_S = 1.0
# How long a request waits for a fresh backlog read before it goes on with the last one: a
# broker that drops packets must not hold every request (the publish has its own deadline).
ADMIT_WAIT_S = 1.0
# What counts as backlog: jobs waiting for a worker and jobs waiting for their time.
BACKLOG = ("normal", "priority", "retry", "hold")
RETRY_AFTER_FULL_S = 30


class BacklogGate:
    def __init__(self, inspector: QueueInspector, max_depth: int) -> None:
        self.inspector = inspector
        self.max_depth = max_depth
        self._depth = 0
        self._read_at = 0.0
        self._reading: asyncio.Future[None] | None = None

    async def backlog(self) -> int:
        """The backlog, read from RabbitMQ at most once a second however many ask at once.

        When the value is due for a refresh, one read goes out and every concurrent caller
        waits for that same read (a burst of requests must not queue hundreds of probes on
        the broker). Only a successful read is cached: while RabbitMQ is down each caller
        gets the failure, and the next one probes again.
        """
        if time.monotonic() - self._read_at >= REFRESH_S:
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._read())
                self._reading.add_done_callback(self._read_done)
            # Shielded: a caller that goes away (or stops waiting) must not cancel the read
            # the others await.
            # Still reading after ADMIT_WAIT_S: judged on the last value read.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reading), ADMIT_WAIT_S)
        return self._depth

    async def _read(self) -> None:
        depths = await self.inspector.depths()
        self._depth = sum(depths[label] for label in BACKLOG)
        self._read_at = time.monotonic()

    def _read_done(self, reading: asyncio.Future[None]) -> None:
        self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved here: its callers were given it already

    async def is_full(self) -> bool:
        """SPEC §2.8: refused when the backlog *exceeds* MAX_QUEUE_DEPTH; at it, still open."""
        return await self.backlog() > self.max_depth

    async def admit(self) -> None:
        """Raise 503 with Retry-After while the backlog is over MAX_QUEUE_DEPTH."""
        if await self.is_full():
            raise ApiError(
                503,
                "queue_full",
                "the backlog is over MAX_QUEUE_DEPTH; retry later",
                headers={"Retry-After": str(RETRY_AFTER_FULL_S)},
            )
