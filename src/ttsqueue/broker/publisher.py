"""Publishing with publisher confirms: a call returns only once RabbitMQ has the message.

Each publish has one overall deadline, channel opening included: a broker that drops packets
costs the caller that long and then a BrokerUnavailableError, never a hang (the API uses a
short one, so that a client gets its 503 within 5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection, DeliveryMode
from aio_pika.message import encode_expiration

from ttsqueue.broker.convoy import Convoy
from ttsqueue.broker.topology import QueueNames
from ttsqueue.errors import BrokerUnavailableError

PUBLISH_TIMEOUT_S = 10.0
# Audit messages are published together: those of the jobs that end within this window, or
# as soon as this many are waiting. The audit is a copy of an ending already recorded, so
# nothing waits for it; a stopping process waits for it (JobLifecycle.drain).
RESULTS_WINDOW_S = 0.05
RESULTS_CONVOY_SIZE = 64

# Channels being closed in the background after a failed publish (kept referenced).
_closing: set[asyncio.Future[None]] = set()


async def _close_quietly(channel: AbstractChannel) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(PUBLISH_TIMEOUT_S):
            await channel.close()


def _retrieve(opening: asyncio.Task[AbstractChannel]) -> None:
    """Mark a failed opening's error as seen: the publishes that waited for it raised it, and
    when all of them gave up first, nobody else needs it."""
    if not opening.cancelled():
        opening.exception()


class Publisher:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        names: QueueNames,
        *,
        deadline_s: float = PUBLISH_TIMEOUT_S,
        results_convoy: Convoy | None = None,
    ) -> None:
        self.connection = connection
        self.names = names
        self.deadline_s = deadline_s
        self._channel: AbstractChannel | None = None
        self._opening: asyncio.Task[AbstractChannel] | None = None
        self._results_convoy = results_convoy or Convoy(RESULTS_WINDOW_S, RESULTS_CONVOY_SIZE)

    async def _get_channel(self) -> AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        opening = self._opening
        if opening is None:
            opening = self._opening = asyncio.create_task(self._open_channel())
            opening.add_done_callback(_retrieve)
        # Every publish that waited for the channel resumes in the turn it opens, so their
        # frames leave together (a lock let them through one per turn). Shielded: a publish
        # that gives up does not cancel the opening that the others wait for.
        return await asyncio.shield(opening)

    async def _open_channel(self) -> AbstractChannel:
        """One opening at a time, bounded like a publish: a broker that never answers costs
        the publishes waiting for it their deadline, and the next publish tries again."""
        try:
            async with asyncio.timeout(self.deadline_s):
                channel = await self.connection.channel(
                    publisher_confirms=True, on_return_raises=True
                )
            self._channel = channel
            return channel
        finally:
            self._opening = None

    async def publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str,
        exchange: str = "",
        expiration_s: float | None = None,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Publish persistently and wait for the broker's confirm."""
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            expiration=encode_expiration(expiration_s),
            headers=headers or {},
            message_id=message_id,
        )
        try:
            async with asyncio.timeout(self.deadline_s):
                channel = await self._get_channel()
                if channel.is_closed:
                    raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
                # aio-pika's Exchange.publish over the same channel, less its Message object,
                # and without `wait`: that holds the channel's lock until the frames are
                # written, so that concurrent publishes went out one event-loop turn each.
                # The confirm is still awaited; an unroutable message still raises (the
                # channel is opened with on_return_raises).
                underlay = await channel.get_underlay_channel()
                assert isinstance(underlay, aiormq.Channel)  # what aio-pika's channels carry
                await underlay.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=True,
                    # The deadline above bounds the confirm too: a second timer would only
                    # cost one more timer handle per publish.
                    timeout=None,
                    wait=False,
                )
        except TimeoutError as exc:
            # The channel may be half open: the next publish opens another.
            self._drop_channel()
            raise BrokerUnavailableError(
                f"RabbitMQ did not confirm the message within {self.deadline_s:g}s"
            ) from exc
        except (
            aio_pika.exceptions.AMQPError,
            ConnectionError,
            OSError,
            RuntimeError,
        ) as exc:
            # A channel that lived through a lost node may never carry a message again (its
            # robust restore failed): the next publish opens a fresh one.
            self._drop_channel()
            raise BrokerUnavailableError(f"RabbitMQ did not confirm the message: {exc!r}") from exc

    def _drop_channel(self) -> None:
        stale, self._channel = self._channel, None
        if stale is not None and not stale.is_closed:
            task = asyncio.ensure_future(_close_quietly(stale))
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def to_work_queue(self, queue: str, body: bytes, message_id: str) -> None:
        await self.publish(body, routing_key=queue, message_id=message_id)

    async def to_retry(self, work_queue: str, body: bytes, message_id: str, delay_s: float) -> None:
        """Park a message in tts_retry; it returns to `work_queue` when it expires."""
        await self.publish(
            body,
            exchange=self.names.retry_exchange,
            routing_key=work_queue,
            message_id=message_id,
            expiration_s=max(delay_s, 0.001),
        )

    async def to_hold(self, work_queue: str, body: bytes, message_id: str) -> None:
        """Park a message in tts_hold; it returns to `work_queue` after DELAY_HOLD_SECONDS."""
        await self.publish(
            body, exchange=self.names.hold_exchange, routing_key=work_queue, message_id=message_id
        )

    async def to_results(self, body: bytes, message_id: str) -> None:
        """Publish one audit message, in the next convoy of them (broker/convoy.py)."""
        await self._results_convoy.join()
        await self.publish(body, routing_key=self.names.results, message_id=message_id)
