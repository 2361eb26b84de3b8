"""Keeping the worker's own requeues from counting against a quorum queue's delivery limit.

A quorum work queue dead-letters a message once it has come back `x-delivery-limit` times,
and it counts every return: a worker's crash, but also the worker's own requeues during a
Redis outage and the buffered messages it hands back when it stops. A job whose message went
that way would wait forever. So when the worker is about to hand back a message that has no
return left (`x-delivery-count` at the limit), it publishes a fresh copy (confirmed) and acks
the old one instead. Crash loops are still stopped by the worker's own MAX_DELIVERIES count
(kept in Redis per attempt, which the copy does not reset).
"""

from __future__ import annotations

from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from ttsqueue.broker.publisher import Publisher
from ttsqueue.errors import BrokerUnavailableError
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.broker.recycle")

# Headers the broker adds on its way; a fresh copy starts without them.
_BROKER_HEADERS = frozenset({"x-delivery-count", "x-death", "x-first-death-exchange"})


class Recycler:
    def __init__(self, publisher: Publisher, delivery_limit: int | None) -> None:
        self.publisher = publisher
        # None: classic queues, which count nothing.
        self.delivery_limit = delivery_limit

    def needed(self, message: AbstractIncomingMessage) -> bool:
        """True when handing `message` back would make the broker dead-letter it."""
        if self.delivery_limit is None:
            return False
        count = (message.headers or {}).get("x-delivery-count", 0)
        return isinstance(count, int) and count >= self.delivery_limit

    async def hand_back(self, message: AbstractIncomingMessage, queue: str) -> bool:
        """Publish a fresh copy of `message` to `queue`; True when the broker confirmed it (the
        caller then acks the original instead of requeueing it)."""
        if not self.needed(message):
            return False
        headers: dict[str, Any] = {
            name: value
            for name, value in (message.headers or {}).items()
            if name not in _BROKER_HEADERS and not name.startswith("x-first-death")
        }
        try:
            await self.publisher.publish(
                message.body,
                routing_key=queue,
                message_id=message.message_id or "",
                headers=headers,
            )
        except BrokerUnavailableError as exc:
            log.warning("could not hand back a fresh copy; requeued", error=repr(exc))
            return False
        return True
