"""The dispatch loop: a bounded pool fed by the priority consumer; graceful shutdown."""

from __future__ import annotations

import asyncio
from typing import Protocol

from aio_pika.abc import AbstractIncomingMessage

from ttsqueue.broker.consumer import PriorityConsumer
from ttsqueue.domain import Priority
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.worker.runner")


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
                task = asyncio.create_task(self.handler.handle(message, priority))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(lambda _: slots.release())
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
