"""Per-process request pacing: at most `rate` requests per second, spaced evenly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Throttle:
    """Each `acquire(cost)` reserves `cost` request slots and sleeps until the first is due.

    Reservations are taken in call order, so waiting callers are served first come, first
    served, and a burst of callers is spread at `1 / rate` second intervals.
    """

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.interval = 1.0 / rate
        self._clock = clock
        self._next_free = 0.0

    def reserve(self, cost: int = 1) -> float:
        """Book `cost` slots; returns how long the caller must wait before sending."""
        now = self._clock()
        start = max(now, self._next_free)
        self._next_free = start + self.interval * max(1, cost)
        return start - now

    async def acquire(self, cost: int = 1) -> None:
        delay = self.reserve(cost)
        if delay > 0:
            await asyncio.sleep(delay)
