"""Refuses new jobs while the backlog exceeds MAX_QUEUE_DEPTH (read at most once a second)."""

from __future__ import annotations

import time

from ttsqueue.api.errors import ApiError
from ttsqueue.broker.topology import QueueInspector

REFRESH_S = 1.0
# What counts as backlog: jobs waiting for a worker and jobs waiting for their time.
BACKLOG = ("normal", "priority", "retry", "hold")
RETRY_AFTER_FULL_S = 30


class BacklogGate:
    def __init__(self, inspector: QueueInspector, max_depth: int) -> None:
        self.inspector = inspector
        self.max_depth = max_depth
        self._depth = 0
        self._read_at = 0.0

    async def backlog(self) -> int:
        now = time.monotonic()
        if now - self._read_at >= REFRESH_S:
            depths = await self.inspector.depths()
            # Only a successful read is cached: while RabbitMQ is down every call probes again.
            self._depth = sum(depths[label] for label in BACKLOG)
            self._read_at = now
        return self._depth

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
