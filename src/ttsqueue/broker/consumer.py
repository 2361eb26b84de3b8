"""Strict-priority consumption of the two work queues.

Consuming both queues side by side lets RabbitMQ interleave them, so a high-priority message
can wait behind a prefetch window of normal ones. Here each queue has its own channel and
local buffer, and a message is taken from a buffer only when a processing slot is free: at
that moment a waiting high-priority message always wins. Normal messages buffered but not
started are handed back to RabbitMQ on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError

from ttsqueue.broker.recycle import Recycler
from ttsqueue.broker.topology import QueueNames
from ttsqueue.domain import Priority


class PriorityConsumer:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: QueueNames,
        concurrency: int,
        recycler: Recycler | None = None,
    ) -> None:
        self.connection = connection
        # Buffered messages handed back at stop go as fresh copies where a requeue would
        # dead-letter them (quorum queues: broker/recycle.py).
        self.recycler = recycler
        self.names = names
        self.concurrency = concurrency
        self._buffers: dict[Priority, deque[AbstractIncomingMessage]] = {
            Priority.HIGH: deque(),
            Priority.NORMAL: deque(),
        }
        # Set whenever a message is buffered (and at stop): whoever takes messages waits on it.
        self.arrived = asyncio.Event()
        self._channels: list[AbstractChannel] = []
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._stopped = False

    async def start(self) -> None:
        # The priority queue is subscribed first so that, on start-up, its backlog arrives
        # before the first normal messages.
        for priority in (Priority.HIGH, Priority.NORMAL):
            channel = await self.connection.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=self.concurrency)
            queue = await channel.get_queue(self.names.work_queue(priority), ensure=True)
            tag = await queue.consume(self._receiver(priority), no_ack=False)
            self._channels.append(channel)
            self._consumers.append((queue, tag))

    def _receiver(self, priority: Priority) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        async def receive(message: AbstractIncomingMessage) -> None:
            self._buffers[priority].append(message)
            self.arrived.set()

        return receive

    def take(
        self, priorities: tuple[Priority, ...] = (Priority.HIGH, Priority.NORMAL)
    ) -> tuple[AbstractIncomingMessage, Priority] | None:
        """The next buffered message to start from `priorities`, in that order, if any (never
        waits: `arrived` says when to ask again); None once stopped."""
        if self._stopped:
            return None
        for priority in priorities:
            buffer = self._buffers[priority]
            while buffer:
                message = buffer.popleft()
                # After a reconnect the old channel's deliveries are void: RabbitMQ
                # redelivers them on the new channel.
                if _channel_open(message):
                    return message, priority
        return None

    async def stop(self) -> None:
        """Stop receiving and return every buffered, unstarted message to its queue."""
        self._stopped = True
        self.arrived.set()
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        for priority, buffer in self._buffers.items():
            while buffer:
                message = buffer.popleft()
                with contextlib.suppress(Exception):
                    target = self.names.work_queue(priority)
                    if self.recycler is not None and await self.recycler.hand_back(message, target):
                        await message.ack()
                    else:
                        await message.nack(requeue=True)

    async def close(self) -> None:
        for channel in self._channels:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()


def _channel_open(message: AbstractIncomingMessage) -> bool:
    try:
        return not message.channel.is_closed
    except ChannelInvalidStateError:  # aio-pika's way of saying the channel is closed
        return False
