"""The dispatch loop: a bounded pool fed by the priority consumer; graceful shutdown.

A job holds one of the WORKER_CONCURRENCY slots while it is prepared (record, speech). Once
it waits for a trunk line or follows its call it hands the slot back (`leave_slot`), so the
worker keeps choosing work: a newer high-priority message starts at once instead of waiting
behind jobs that only wait for the telephone. How many messages a worker holds in all stays
bounded by the prefetch (WORKER_CONCURRENCY per queue): nothing is acked before its next
state is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol

from aio_pika.abc import AbstractIncomingMessage

from ttsqueue.broker.consumer import PriorityConsumer
from ttsqueue.domain import Priority
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.worker.runner")

_slot: ContextVar[Callable[[], None] | None] = ContextVar("worker_slot", default=None)


def leave_slot() -> None:
    """The current job stops counting against WORKER_CONCURRENCY (idempotent; a no-op
    outside a job started by a Runner)."""
    release = _slot.get()
    if release is not None:
        release()


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
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        await self.consumer.start()
        stop_waiter = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                await slots.acquire()
                # The slot is taken before choosing the message: the choice is made at the
                # moment work can start, so a waiting high-priority message always wins.
                item = await self._next_or_stop(stop_waiter)
                if item is None:
                    slots.release()
                    break
                message, priority = item
                release = _once(slots.release)
                token = _slot.set(release)
                try:
                    task = asyncio.create_task(self.handler.handle(message, priority))
                finally:
                    _slot.reset(token)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(_releaser(release))
        finally:
            stop_waiter.cancel()
            await self._drain()

    async def _next_or_stop(
        self, stop_waiter: asyncio.Task[bool]
    ) -> tuple[AbstractIncomingMessage, Priority] | None:
        getter = asyncio.create_task(self.consumer.next())
        done, _ = await asyncio.wait({getter, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        await asyncio.wait([getter])
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


def _releaser(release: Callable[[], None]) -> Callable[[asyncio.Task[None]], None]:
    def on_done(_: asyncio.Task[None]) -> None:
        release()

    return on_done


def _once(release: Callable[[], None]) -> Callable[[], None]:
    done = False

    def release_once() -> None:
        nonlocal done
        if not done:
            done = True
            release()

    return release_once
