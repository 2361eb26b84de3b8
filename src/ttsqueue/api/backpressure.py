"""Refuses new jobs while the backlog exceeds MAX_QUEUE_DEPTH, judged on a read of the queues'
depths at most a second old."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from ttsqueue.api.errors import ApiError
from ttsqueue.broker.topology import QueueInspector

# The longest a request is judged on one read: older, the request waits for a new one.
REFRESH_S = 1.0
# From this age a new read starts in the background and requests go on with the value they
# have. A read is several round trips on a busy broker (tens of milliseconds under ingest
# load), and every request arriving meanwhile would wait for it.
REFRESH_AHEAD_S = 0.5
# How long a request waits for a fresh backlog read before it goes on with the last one: a
# broker that drops packets must not hold every request (the publish has its own deadline).
ADMIT_WAIT_S = 1.0
# What counts as backlog: jobs waiting for a worker and jobs waiting for their time.
BACKLOG = ("normal", "priority", "retry", "hold")
RETRY_AFTER_FULL_S = 30


class BacklogGate:
    def __init__(
        self,
        inspector: QueueInspector,
        max_depth: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inspector = inspector
        self.max_depth = max_depth
        self._clock = clock
        self._depth = 0
        self._read_at = -REFRESH_S
        self._reading: asyncio.Future[None] | None = None

    async def backlog(self) -> int:
        """The backlog, from a read of RabbitMQ at most REFRESH_S old, however many ask.

        One read is out at a time, shared by every caller (a burst of requests must not queue
        hundreds of probes on the broker). From REFRESH_AHEAD_S the next read starts while
        callers go on with the value they have, so that steady traffic never waits for one;
        from REFRESH_S (an idle API, or reads failing) callers wait for it. Only a successful
        read is kept: while RabbitMQ is down each waiting caller gets the failure, and the next
        one probes again.
        """
        age = self._clock() - self._read_at
        if age >= REFRESH_AHEAD_S:
            reading = self._start_read()
            if age >= REFRESH_S:
                # Shielded: a caller that goes away (or stops waiting) must not cancel the
                # read the others await. Still reading after ADMIT_WAIT_S: judged on the last
                # value read.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reading), ADMIT_WAIT_S)
        return self._depth

    def _start_read(self) -> asyncio.Future[None]:
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._read_done)
        return self._reading

    async def _read(self) -> None:
        depths = await self.inspector.depths(BACKLOG)
        self._depth = sum(depths.values())
        self._read_at = self._clock()

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
