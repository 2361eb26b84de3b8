"""Callers held for a short window, then let go together, in one event-loop turn.

A worker ends its jobs one at a time, and each ending publishes a persistent, confirmed audit
message and acks a delivery. Sent one by one, each cost RabbitMQ its own wake-ups, and each
audit message its own sync to disk before the confirm: about four times the CPU of the same
message published with a dozen others (benchmarks/bench_audit_convoy.py). So audit messages
(broker/publisher.py) and acks (worker/settle.py) wait in convoys, then each convoy's go out in
the same turn.
"""

from __future__ import annotations

import asyncio


class Convoy:
    """`await convoy.join()` returns when the current window closes: `window_s` after its first
    caller, or as soon as `size` callers are waiting, whichever comes first."""

    def __init__(self, window_s: float, size: int) -> None:
        if window_s <= 0 or size < 1:
            raise ValueError("a convoy needs a positive window and size")
        self.window_s = window_s
        self.size = size
        self._departure: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = 0

    async def join(self) -> None:
        departure = self._departure
        if departure is None:
            loop = asyncio.get_running_loop()
            departure = self._departure = loop.create_future()
            self._timer = loop.call_later(self.window_s, self._depart)
        self._waiting += 1
        if self._waiting >= self.size:
            self._depart()
        # Shielded: a caller cancelled while waiting must not cancel the others' departure.
        await asyncio.shield(departure)

    def _depart(self) -> None:
        departure, self._departure = self._departure, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting = 0
        if departure is not None and not departure.done():
            departure.set_result(None)
