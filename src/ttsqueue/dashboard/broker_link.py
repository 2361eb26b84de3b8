"""The dashboard's view of RabbitMQ: connects in the background and never blocks a page.

The dashboard must start, and keep serving, while RabbitMQ is down; it reads the queues with
passive declares (ready messages and consumers), each read bounded by a short timeout.
"""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from ttsqueue.broker.connection import connect_broker
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.errors import BrokerUnavailableError
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.dashboard")

PROBE_TIMEOUT_S = 1.5
RECONNECT_S = 2.0


class BrokerLink:
    def __init__(self, url: str, names: QueueNames) -> None:
        self.url = url
        self.names = names
        self._connection: AbstractRobustConnection | None = None
        self._inspector: QueueInspector | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="dashboard-broker-connect")

    async def _connect(self) -> None:
        while True:
            try:
                self._connection = await connect_broker(self.url, name="dashboard")
            except (ConnectionError, OSError, aio_pika.exceptions.AMQPError) as exc:
                log.warning("waiting for RabbitMQ", error=repr(exc), retry_in_s=RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)
                continue
            self._inspector = QueueInspector(self._connection, self.names)
            return

    async def counts(self) -> dict[str, tuple[int, int]]:
        """(ready, consumers) by queue label; BrokerUnavailableError when it cannot tell."""
        inspector = self._inspector
        if inspector is None or self._connection is None or self._connection.is_closed:
            raise BrokerUnavailableError("not connected to RabbitMQ")
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                return await inspector.counts()
        except TimeoutError:
            raise BrokerUnavailableError("RabbitMQ did not answer in time") from None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        if self._inspector is not None:
            with contextlib.suppress(Exception):
                await self._inspector.close()
        if self._connection is not None:
            await self._connection.close()
