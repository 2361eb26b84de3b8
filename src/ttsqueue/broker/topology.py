"""The RabbitMQ topology, declared in one place, idempotently (SPEC §4).

tts_priority / tts_calls   work queues; rejected messages dead-letter to tts_dead
tts_retry                  bound to the retry exchange under each work queue's name; messages
                           carry their own expiration and dead-letter (default exchange, same
                           routing key) back to the work queue they were published for
tts_hold                   the same for long waits, bound to the hold exchange; every message
                           lives exactly DELAY_HOLD_SECONDS (a queue TTL), so expiry order is
                           arrival order and none waits behind another
tts_results                audit of terminal states, bounded, drop-head
tts_dead                   dead letters
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, ExchangeType
from aiormq.exceptions import ChannelPreconditionFailed

from ttsqueue.config import QueueType, Settings
from ttsqueue.domain import Priority
from ttsqueue.errors import BrokerUnavailableError, TopologyMismatchError
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.broker.topology")

# Classic queues keep their messages in RabbitMQ's version 2 store (3.10 and later; the only
# one from 4.3). With a backlog growing by thousands a second, the version 1 index made
# persistent publishes wait for their confirm 37-50 ms at the 99th percentile, version 2 about
# 21 ms (3,800 publishes/s, RabbitMQ 3.10, `bench_ingest.py`'s machine).
VERSION_ARGUMENT = "x-queue-version"
CLASSIC_QUEUE_VERSION = 2


@dataclass(frozen=True, slots=True)
class QueueNames:
    calls: str
    priority: str
    results: str
    retry: str
    hold: str
    dead: str
    retry_exchange: str
    hold_exchange: str

    @classmethod
    def from_prefix(cls, prefix: str) -> QueueNames:
        return cls(
            calls=f"{prefix}tts_calls",
            priority=f"{prefix}tts_priority",
            results=f"{prefix}tts_results",
            retry=f"{prefix}tts_retry",
            hold=f"{prefix}tts_hold",
            dead=f"{prefix}tts_dead",
            retry_exchange=f"{prefix}tts.retry",
            hold_exchange=f"{prefix}tts.hold",
        )

    def work_queue(self, priority: Priority) -> str:
        return self.priority if priority is Priority.HIGH else self.calls

    def by_label(self) -> dict[str, str]:
        """Every queue, under the name `/queue/stats` reports it."""
        return {
            "normal": self.calls,
            "priority": self.priority,
            "results": self.results,
            "retry": self.retry,
            "hold": self.hold,
            "dead": self.dead,
        }

    def queues(self) -> list[str]:
        return list(self.by_label().values())

    def exchanges(self) -> list[str]:
        return [self.retry_exchange, self.hold_exchange]


def delivery_limit(settings: Settings) -> int | None:
    """The work queues' `x-delivery-limit` (quorum queues only)."""
    if settings.RABBITMQ_QUEUE_TYPE is QueueType.QUORUM:
        return settings.MAX_DELIVERIES
    return None


def queue_arguments(settings: Settings, names: QueueNames) -> dict[str, dict[str, Any]]:
    """The arguments of every queue; any change here is a migration for existing brokers."""
    quorum = settings.RABBITMQ_QUEUE_TYPE is QueueType.QUORUM
    base: dict[str, Any] = (
        {"x-queue-type": "quorum"} if quorum else {VERSION_ARGUMENT: CLASSIC_QUEUE_VERSION}
    )
    to_dead = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": names.dead}
    work = {**base, **to_dead}
    limit = delivery_limit(settings)
    if limit is not None:
        work["x-delivery-limit"] = limit
    return {
        names.priority: work,
        names.calls: work,
        names.retry: {**base, "x-dead-letter-exchange": ""},
        names.hold: {
            **base,
            "x-dead-letter-exchange": "",
            "x-message-ttl": settings.DELAY_HOLD_SECONDS * 1000,
        },
        names.results: {
            **base,
            "x-max-length": settings.RESULTS_MAX_LENGTH,
            "x-overflow": "drop-head",
        },
        names.dead: dict(base),
    }


async def declare_topology(channel: AbstractChannel, settings: Settings) -> QueueNames:
    """Declare exchanges, queues and bindings; raise TopologyMismatchError on conflicts."""
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    for name, arguments in queue_arguments(settings, names).items():
        await _declare_queue(channel, name, arguments)
    for exchange_name, queue_name in (
        (names.retry_exchange, names.retry),
        (names.hold_exchange, names.hold),
    ):
        exchange = await channel.declare_exchange(exchange_name, ExchangeType.DIRECT, durable=True)
        queue = await channel.get_queue(queue_name, ensure=False)
        for work in (names.calls, names.priority):
            await queue.bind(exchange, routing_key=work)
    return names


def without_version(arguments: dict[str, Any]) -> dict[str, Any]:
    """A queue's arguments as releases before the storage version declared them."""
    return {k: v for k, v in arguments.items() if k != VERSION_ARGUMENT}


async def _declare_queue(channel: AbstractChannel, name: str, arguments: dict[str, Any]) -> None:
    try:
        await channel.declare_queue(name, durable=True, arguments=arguments)
        return
    except ChannelPreconditionFailed as exc:
        if VERSION_ARGUMENT not in arguments or f"'{VERSION_ARGUMENT}'" not in str(exc):
            raise TopologyMismatchError(name, str(exc)) from None
    # A queue declared before its version was named (by an earlier release) is kept as it
    # is, so that an upgrade needs no migration; its other arguments must still match.
    await channel.reopen()  # the broker closed the channel with its refusal
    try:
        await channel.declare_queue(name, durable=True, arguments=without_version(arguments))
    except ChannelPreconditionFailed as exc:
        raise TopologyMismatchError(name, str(exc)) from None
    log.warning(
        "queue declared without a storage version: kept as it is",
        queue=name,
        hint=f"a policy with queue-version {CLASSIC_QUEUE_VERSION} "
        "converts it in place; or drain it and run ./manage.sh clean --queues",
    )


INSPECT_DEADLINE_S = 2.0


class QueueInspector:
    """Reads ready-message counts with passive declares on one reusable channel, within one
    overall deadline (channel opening included)."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractConnection,
        names: QueueNames,
        *,
        deadline_s: float = INSPECT_DEADLINE_S,
    ) -> None:
        self.connection = connection
        self.names = names
        self.deadline_s = deadline_s
        self._channel: AbstractChannel | None = None

    async def _open(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self.connection.channel(publisher_confirms=False)
        return self._channel

    async def depths(self, labels: Collection[str] | None = None) -> dict[str, int]:
        """Ready-message counts by label (of every queue, or of `labels`); a queue that does
        not exist yet counts 0."""
        return {label: ready for label, (ready, _) in (await self.counts(labels)).items()}

    async def counts(self, labels: Collection[str] | None = None) -> dict[str, tuple[int, int]]:
        """(ready messages, consumers) by label (of every queue, or of `labels`: one round
        trip each); a queue that does not exist yet counts 0."""
        names = self.names.by_label()
        if labels is not None:
            names = {label: names[label] for label in labels}
        counts: dict[str, tuple[int, int]] = {}
        try:
            async with asyncio.timeout(self.deadline_s):
                for label, name in names.items():
                    counts[label] = await self._counts(name)
        except TimeoutError as exc:
            self._channel = None  # maybe half open: the next read opens another
            raise BrokerUnavailableError(
                f"queue depths not read within {self.deadline_s:g}s"
            ) from exc
        except (aio_pika.exceptions.AMQPError, ConnectionError, OSError, RuntimeError) as exc:
            raise BrokerUnavailableError(f"cannot read queue depths: {exc!r}") from exc
        return counts

    async def _counts(self, name: str) -> tuple[int, int]:
        channel = await self._open()
        try:
            # robust=False: a probe must not be re-declared after a reconnect.
            queue = await channel.declare_queue(  # type: ignore[call-arg]
                name, passive=True, robust=False
            )
        except aio_pika.exceptions.ChannelNotFoundEntity:
            # A missing queue closes the channel; the next read opens another.
            return 0, 0
        result = queue.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
