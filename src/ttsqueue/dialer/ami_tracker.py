"""Following AMI calls through Redis, so that any worker can learn how a call ended.

Every worker's session hands its events to `on_event`; the facts about our calls are written,
in arrival order, to the calls' records (`call_records.py`), and local waiters are woken at
once. `wait` reads the record until `ami_outcome.resolve` can tell the result: it works the
same in the process that dialed and in one that took the job over after a crash (that one is
woken by its own session's events, or by polling when another worker's session saw them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ttsqueue.dialer.ami.protocol import AmiMessage
from ttsqueue.dialer.ami_events import Facts, call_facts
from ttsqueue.dialer.ami_outcome import Deadlines, resolve
from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.call_records import CallRecords
from ttsqueue.store.connection import REDIS_DOWN_ERRORS

log = logging.getLogger("ttsqueue.dialer.ami")

POLL_S = 0.5
RECORD_RETRIES_S = (0.1, 0.5, 1.0, 2.0)


class CallTracker:
    def __init__(self, records: CallRecords, deadlines: Deadlines | None = None) -> None:
        self.records = records
        self.deadlines = deadlines or Deadlines()
        self._queue: asyncio.Queue[tuple[str, Facts]] = asyncio.Queue()
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def on_event(self, event: AmiMessage) -> None:
        """Called by the session's reader for every event: must not block."""
        found = call_facts(event, time.time())
        if found is not None:
            self._queue.put_nowait(found)

    async def run(self) -> None:
        """Write queued facts to Redis, in order, and wake whoever waits for that call."""
        while True:
            call_id, facts = await self._queue.get()
            await self._record(call_id, facts)
            for wake in self._waiters.get(call_id, ()):
                wake.set()

    async def wait(self, call: CallRequest) -> CallResult:
        wake = asyncio.Event()
        self._waiters.setdefault(call.call_id, set()).add(wake)
        try:
            while True:
                wake.clear()
                facts = await self._read(call.call_id)
                if facts is not None:
                    result = resolve(facts, call, time.time(), self.deadlines)
                    if result is not None:
                        return result
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await wake.wait()
        finally:
            waiters = self._waiters.get(call.call_id, set())
            waiters.discard(wake)
            if not waiters:
                self._waiters.pop(call.call_id, None)

    async def _record(self, call_id: str, facts: Facts) -> None:
        for delay in (*RECORD_RETRIES_S, None):
            try:
                await self.records.record(call_id, facts)
                return
            except REDIS_DOWN_ERRORS as exc:
                if delay is None:
                    log.error("facts about call %s lost: %r", call_id, exc)
                    return
                await asyncio.sleep(delay)

    async def _read(self, call_id: str) -> dict[str, str] | None:
        try:
            return await self.records.read(call_id)
        except REDIS_DOWN_ERRORS as exc:
            log.warning("call record %s not readable: %r", call_id, exc)
            return None
