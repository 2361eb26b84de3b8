"""Following AMI calls through Redis, so that any worker can learn how a call ended.

Every worker's session hands its events to `on_event`; the facts about our calls are written,
in arrival order and those waiting together, to the calls' records (`call_records.py`), and
local waiters are woken at once. `wait` reads the record until `dialer.outcome.resolve` can tell
the result: it works the same in the process that dialed and in one that took the job over after
a crash (that one is woken by its own session's events, or by polling when another worker's
session saw them).

Redis may refuse writes for a while (down, READONLY after a failover, OOM, timeouts): facts
then wait, in order, and are retried until Redis takes them. What bounds the buffer is a
count (MAX_PENDING_FACTS), never a time: only when that many facts wait are the oldest given
up, each one logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable

from ttsqueue.dialer.ami.call_records import CallRecords
from ttsqueue.dialer.ami.events import Facts, call_facts
from ttsqueue.dialer.ami.protocol import AmiMessage
from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.outcome import Deadlines, resolve
from ttsqueue.errors import StoreError
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.dialer.ami")

POLL_S = 0.5
MAX_PENDING_FACTS = 50_000
# Facts written per round trip. One at a time, a worker following a few hundred calls on a
# loaded machine fell seconds behind its session's events: long enough for a Hangup to be
# recorded and its OriginateResponse, seen a moment later, not yet, past the verdict's wait.
WRITE_BATCH = 256
RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0
# Whatever Redis answers instead of storing: connection errors, timeouts, READONLY, OOM...
_STORE_ERRORS: tuple[type[Exception], ...] = (StoreError,)


class CallTracker:
    def __init__(
        self,
        records: CallRecords,
        deadlines: Deadlines | None = None,
        *,
        max_pending: int = MAX_PENDING_FACTS,
    ) -> None:
        self.records = records
        self.deadlines = deadlines or Deadlines()
        self._pending: deque[tuple[str, Facts]] = deque()
        self._max_pending = max_pending
        self._arrived = asyncio.Event()
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self.dropped = 0

    def pending(self) -> int:
        return len(self._pending)

    def on_event(self, event: AmiMessage) -> None:
        """Called by the session's reader for every event: must not block."""
        found = call_facts(event, time.time())
        if found is None:
            return
        if len(self._pending) >= self._max_pending:
            call_id, _ = self._pending.popleft()
            self.dropped += 1
            log.error("call facts given up", call_id=call_id, waiting=self._max_pending)
        self._pending.append(found)
        self._arrived.set()

    async def run(self) -> None:
        """Write pending facts to Redis, in order, up to WRITE_BATCH of them per round trip,
        and wake whoever waits for those calls. A fact is removed only once Redis has it (or
        the buffer overflowed)."""
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            batch = list(itertools.islice(self._pending, WRITE_BATCH))
            await self._record(batch)
            for item in batch:
                if self._pending and self._pending[0] is item:  # not dropped meanwhile
                    self._pending.popleft()
            for call_id in dict.fromkeys(call_id for call_id, _ in batch):
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

    async def _record(self, batch: list[tuple[str, Facts]]) -> None:
        """Until Redis takes them all; a failure that is not Redis's (a bug) drops only the
        facts at fault, written one by one."""
        try:
            await _until_stored(functools.partial(self.records.record_many, batch), len(batch))
        except Exception as exc:
            log.error("call facts batch not sent, written one by one", error=repr(exc))
            for call_id, facts in batch:
                try:
                    await _until_stored(functools.partial(self.records.record, call_id, facts), 1)
                except Exception as fault:
                    log.error("call facts not recorded", call_id=call_id, error=repr(fault))

    async def _read(self, call_id: str) -> dict[str, str] | None:
        try:
            return await self.records.read(call_id)
        except _STORE_ERRORS as exc:
            log.warning("call record not readable", call_id=call_id, error=repr(exc))
            return None


async def _until_stored(write: Callable[[], Awaitable[object]], facts: int) -> None:
    """Run `write` until Redis takes it, waiting longer after each refusal; any other failure
    is raised."""
    delay = RETRY_FIRST_S
    while True:
        try:
            await write()
            return
        except _STORE_ERRORS as exc:
            log.warning("call facts wait for redis", facts=facts, error=repr(exc))
        await asyncio.sleep(delay)
        delay = min(RETRY_MAX_S, delay * 2)
