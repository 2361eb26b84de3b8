"""What a job holds of its worker's slots, on a real broker: waiting for a trunk line holds a
slot against normal messages only, and following a call holds none."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ttsqueue.broker.consumer import PriorityConsumer
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import Priority
from ttsqueue.worker.runner import (
    Phase,
    Runner,
    following_call,
    prefetch_for,
    waiting_for_line,
)

pytestmark = pytest.mark.timeout(60)

CONCURRENCY = 2
LINES = 4


class PhasedHandler:
    """Each job declares it waits for a line, then for `line` to be set, then for `hang_up`."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.line = asyncio.Event()
        self.hang_up = asyncio.Event()
        self.changed = asyncio.Event()

    async def handle(self, message: AbstractIncomingMessage, priority: Priority) -> None:
        self.started.append(message.message_id or "")
        self.changed.set()
        waiting_for_line()
        await self.line.wait()
        following_call()
        await self.hang_up.wait()
        await message.ack()

    async def until(self, check: Callable[[], bool]) -> None:
        while not check():
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 20)


async def started_runner(
    broker: AbstractRobustConnection, names: QueueNames, handler: PhasedHandler
) -> tuple[Runner, asyncio.Task[None]]:
    consumer = PriorityConsumer(broker, names, prefetch_for(CONCURRENCY, LINES))
    runner = Runner(consumer, handler, CONCURRENCY, 5.0)
    return runner, asyncio.create_task(runner.run())


async def stop(runner: Runner, task: asyncio.Task[None], handler: PhasedHandler) -> None:
    handler.line.set()
    handler.hang_up.set()
    runner.request_stop()
    await asyncio.wait_for(task, 30)


async def test_a_high_message_starts_while_normal_jobs_wait_for_lines(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    for n in range(4):
        await publisher.to_work_queue(names.calls, b"{}", f"normal-{n}")
    handler = PhasedHandler()
    runner, task = await started_runner(broker, names, handler)
    try:
        await handler.until(lambda: len(handler.started) == CONCURRENCY)
        await publisher.to_work_queue(names.priority, b"{}", "high")
        await handler.until(lambda: "high" in handler.started)
        # Both slots are held by normal jobs waiting for a line: no third normal job started.
        assert handler.started == ["normal-0", "normal-1", "high"]
        assert runner.occupancy.count == {Phase.PREPARING: 0, Phase.WAITING: 3}
        # Once they hold lines and follow their calls, the slots are free for more work.
        handler.line.set()
        await handler.until(lambda: len(handler.started) == 5)
        assert handler.started[3:] == ["normal-2", "normal-3"]
    finally:
        await stop(runner, task, handler)
