"""What the hub keeps per open page (a bounded mailbox) and the event rates it reports."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ttsqueue.dashboard.snapshot import RecentFilter

EVENT_RATE_WINDOW_S = 10.0
TERMINAL = frozenset({"completed", "failed", "canceled"})


@dataclass(eq=False)
class Subscriber:
    filter: RecentFilter
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(maxsize=4))

    def offer(self, message: bytes | None) -> None:
        """Newest wins: a page that cannot keep up skips snapshots, never blocks the hub."""
        while True:
            try:
                self.queue.put_nowait(message)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()


class EventRates:
    """Jobs submitted and finished per second, over the last few seconds of events."""

    def __init__(self, window_s: float = EVENT_RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._submitted: deque[float] = deque()
        self._finished: deque[float] = deque()

    def record(self, event: dict[str, Any], now: float) -> None:
        if event.get("previous_status") is None:
            self._submitted.append(now)
        elif event.get("status") in TERMINAL:
            self._finished.append(now)

    def per_second(self, now: float) -> dict[str, float]:
        for times in (self._submitted, self._finished):
            while times and now - times[0] > self.window_s:
                times.popleft()
        return {
            "submitted_per_s": round(len(self._submitted) / self.window_s, 2),
            "finished_per_s": round(len(self._finished) / self.window_s, 2),
        }
