"""The dispatch loop: a bounded pool fed by the priority consumer; graceful shutdown.

What a job is doing decides what it holds of the worker's WORKER_CONCURRENCY slots:

- preparing (record, speech, the dial itself): a slot, for every job;
- waiting for a trunk line (`waiting_for_line`): a slot against normal messages only. A
  high-priority message still starts while normal jobs wait for the telephone; the line
  queue (worker/trunk.py) then gives it the next free line ahead of them, across workers;
- following its call (`following_call`): nothing. The call holds a trunk line, which
  MAX_CONCURRENT_CALLS bounds; the worker keeps taking work meanwhile, so a few workers on the
  default concurrency fill every line.

So a normal message starts when preparing + waiting < WORKER_CONCURRENCY, a high one when
preparing < WORKER_CONCURRENCY, and the choice is made at that moment, high first. Messages of
followed calls stay unacked (nothing is acked before its next state is recorded), so each
queue's prefetch is WORKER_CONCURRENCY + MAX_CONCURRENT_CALLS (the servers' sum with
ASTERISK_SERVERS; `prefetch_for`, which caps the second term at MAX_FOLLOWED_CALLS).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol

from aio_pika.abc import AbstractIncomingMessage

from ttsqueue.broker.consumer import PriorityConsumer
from ttsqueue.domain import Priority
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.worker.runner")

ANY_PRIORITY = (Priority.HIGH, Priority.NORMAL)
HIGH_ONLY = (Priority.HIGH,)


# Calls one worker follows at most, whatever MAX_CONCURRENT_CALLS says (a larger trunk is
# filled by several workers); keeps the prefetch within what RabbitMQ accepts.
MAX_FOLLOWED_CALLS = 1000


def prefetch_for(concurrency: int, max_calls: int) -> int:
    """Unacked messages a worker may hold per queue: its slots plus the calls it may follow."""
    return concurrency + min(max_calls, MAX_FOLLOWED_CALLS)


class Phase(enum.Enum):
    PREPARING = "preparing"
    WAITING = "waiting"
    FOLLOWING = "following"
    DONE = "done"


class Occupancy:
    """How many of this worker's jobs prepare and how many wait for a line; `changed` is set
    on every move."""

    def __init__(self, changed: asyncio.Event) -> None:
        self.count = {Phase.PREPARING: 0, Phase.WAITING: 0}
        self.changed = changed

    def move(self, before: Phase, after: Phase) -> None:
        if before in self.count:
            self.count[before] -= 1
        if after in self.count:
            self.count[after] += 1
        self.changed.set()


class JobSlot:
    """One job's place in its worker's occupancy; moves only forward."""

    _ORDER = (Phase.PREPARING, Phase.WAITING, Phase.FOLLOWING, Phase.DONE)

    def __init__(self, occupancy: Occupancy) -> None:
        self._occupancy = occupancy
        self.phase = Phase.PREPARING
        occupancy.move(Phase.DONE, Phase.PREPARING)

    def advance(self, phase: Phase) -> None:
        if self._ORDER.index(phase) > self._ORDER.index(self.phase):
            self._occupancy.move(self.phase, phase)
            self.phase = phase


_current: ContextVar[JobSlot | None] = ContextVar("worker_job_slot", default=None)


def waiting_for_line() -> None:
    """The current job is prepared and waits for a trunk line (a no-op outside a Runner)."""
    _advance(Phase.WAITING)


def following_call() -> None:
    """The current job holds a line and places or follows its call (a no-op outside a
    Runner)."""
    _advance(Phase.FOLLOWING)


def _advance(phase: Phase) -> None:
    slot = _current.get()
    if slot is not None:
        slot.advance(phase)


class MessageHandler(Protocol):
    async def handle(self, message: AbstractIncomingMessage, priority: Priority) -> None:
        """Process one delivery and settle it (ack, requeue or dead-letter)."""


class Runner:
    def __init__(
        self,
        consumer: PriorityConsumer,
        handler: MessageHandler,
        concurrency: int,
        shutdown_grace_s: float,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.concurrency = concurrency
        self.shutdown_grace_s = shutdown_grace_s
        # One event wakes the dispatch loop for whatever may let a message start: a message
        # buffered, a job moving on (a slot freed), a stop request. One wait per wake-up, no
        # task per message.
        self._wake = consumer.arrived
        self.occupancy = Occupancy(self._wake)
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        await self.consumer.start()
        try:
            while not self._stop.is_set():
                # The choice is made at the moment work can start, so a waiting high-priority
                # message always wins.
                item = await self._next_or_stop()
                if item is None:
                    break
                message, priority = item
                slot = JobSlot(self.occupancy)
                token = _current.set(slot)
                try:
                    task = asyncio.create_task(self.handler.handle(message, priority))
                finally:
                    _current.reset(token)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(_finisher(slot))
        finally:
            await self._drain()

    def _startable(self) -> tuple[Priority, ...]:
        preparing = self.occupancy.count[Phase.PREPARING]
        waiting = self.occupancy.count[Phase.WAITING]
        if preparing >= self.concurrency:
            return ()
        return ANY_PRIORITY if preparing + waiting < self.concurrency else HIGH_ONLY

    async def _next_or_stop(self) -> tuple[AbstractIncomingMessage, Priority] | None:
        """The next message allowed to start now, high first; None once stopping."""
        while not self._stop.is_set():
            # Cleared before looking, so a wake-up that comes while looking is not lost.
            self._wake.clear()
            allowed = self._startable()
            if allowed and (item := self.consumer.take(allowed)) is not None:
                return item
            await self._wake.wait()
        return None

    async def _drain(self) -> None:
        """Stop taking work, give in-flight jobs time to finish, then requeue the rest."""
        await self.consumer.stop()
        if self._tasks:
            log.info("waiting for in-flight jobs", count=len(self._tasks))
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.shutdown_grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                log.warning("in-flight jobs handed back to the queue", count=len(pending))
        await self.consumer.close()


def _finisher(slot: JobSlot) -> Callable[[asyncio.Task[None]], None]:
    def on_done(_: asyncio.Task[None]) -> None:
        slot.advance(Phase.DONE)

    return on_done
