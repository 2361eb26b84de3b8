"""The dashboard's queue figures with and without RabbitMQ's management API, for real.

With the management plugin enabled (`rabbitmq-plugins enable rabbitmq_management`), unacked
counts and rates come from its HTTP API; with it unreachable (a closed port, wrong credentials,
a server that never answers) the same snapshot still shows ready messages and consumers from
passive declares and marks the rest unavailable, without waiting on the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import httpx
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from tests.integration.test_dashboard_snapshot import building, sources
from tests.ports import free_port
from ttsqueue.broker.management import TIMEOUT_S, ManagementTarget
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.dashboard.management_view import FIRST_WAIT_S
from ttsqueue.dashboard.snapshot import SnapshotBuilder
from ttsqueue.errors import BrokerUnavailableError

PREFETCH = 4


def management_answers(settings: Settings) -> bool:
    target = ManagementTarget.from_urls(settings.RABBITMQ_URL, settings.RABBITMQ_MANAGEMENT_URL)
    try:
        reply = httpx.get(
            f"{target.base_url}/api/overview", auth=(target.user, target.password), timeout=2
        )
    except httpx.HTTPError:
        return False
    return reply.status_code == 200


@pytest.fixture
def needs_management(settings: Settings) -> None:
    if not management_answers(settings):
        pytest.skip("RabbitMQ management plugin not enabled (rabbitmq-plugins enable ...)")


async def publish(connection: AbstractRobustConnection, queue: str, count: int) -> None:
    channel = await connection.channel()
    for _ in range(count):
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue,
        )
    await channel.close()


@contextlib.asynccontextmanager
async def holding_consumer(
    connection: AbstractRobustConnection, queue: str
) -> AsyncIterator[list[AbstractIncomingMessage]]:
    """A consumer that takes `PREFETCH` messages and acknowledges none of them."""
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    held: list[AbstractIncomingMessage] = []

    async def take(message: AbstractIncomingMessage) -> None:
        held.append(message)

    declared = await channel.get_queue(queue, ensure=False)
    tag = await declared.consume(take)
    try:
        yield held
    finally:
        await declared.cancel(tag)
        await channel.close()  # the held messages go back to the queue


@contextlib.asynccontextmanager
async def steady_publishing(
    connection: AbstractRobustConnection, queue: str, per_s: float = 20.0
) -> AsyncIterator[None]:
    """Publishes and consumes on `queue` all along, so that its rates are not zero."""
    channel = await connection.channel()
    declared = await channel.get_queue(queue, ensure=False)

    async def ack(message: AbstractIncomingMessage) -> None:
        await message.ack()

    tag = await declared.consume(ack)

    async def run() -> None:
        while True:
            await channel.default_exchange.publish(aio_pika.Message(b"{}"), routing_key=queue)
            await asyncio.sleep(1 / per_s)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait({task})
        await declared.cancel(tag)
        await channel.close()


async def build_until(builder: SnapshotBuilder, check: Any, timeout: float) -> dict[str, Any]:
    """Snapshots until `check(snapshot)` holds (the management API samples every 5 s)."""
    async with asyncio.timeout(timeout):
        while True:
            snapshot: dict[str, Any] = await builder.build()
            if snapshot["queues"] is not None and check(snapshot):
                return snapshot
            await asyncio.sleep(0.25)


@pytest.mark.timeout(90)
async def test_unacked_counts_and_rates_from_the_management_api(
    settings: Settings,
    redis_client: aioredis.Redis,
    broker: AbstractRobustConnection,
    needs_management: None,
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    await publish(broker, names.calls, 30)

    def settled(snapshot: dict[str, Any]) -> bool:
        normal, priority = snapshot["queues"]["normal"], snapshot["queues"]["priority"]
        return bool(
            normal["unacked"] == PREFETCH
            and normal["consumers"] == 1
            and priority["rates"]
            and priority["rates"]["publish"] > 0
            and priority["rates"]["ack"] > 0
        )

    async with (
        building(settings, sources(redis_client, settings)) as builder,
        holding_consumer(broker, names.calls) as held,
        steady_publishing(broker, names.priority),
    ):
        snapshot = await build_until(builder, settled, timeout=60)
        assert len(held) == PREFETCH
    queues = snapshot["queues"]
    assert snapshot["management"]["available"] is True
    assert queues["normal"]["ready"] == 30 - PREFETCH
    assert queues["normal"]["rates"]["deliver"] >= 0
    assert queues["priority"]["rates"]["deliver"] > 0
    for quiet in ("results", "retry", "dead"):
        assert queues[quiet] == {
            "ready": 0,
            "consumers": 0,
            "unacked": 0,
            "rates": {"publish": 0.0, "deliver": 0.0, "ack": 0.0},
        }


async def test_closed_port_falls_back_to_passive_declares(
    settings: Settings, redis_client: aioredis.Redis, broker: AbstractRobustConnection
) -> None:
    closed = free_port()
    settings = settings.model_copy(
        update={"RABBITMQ_MANAGEMENT_URL": f"http://guest:guest@127.0.0.1:{closed}"}
    )
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    await publish(broker, names.calls, 3)
    async with building(settings, sources(redis_client, settings)) as builder:
        snapshot = await build_until(builder, lambda s: s["queues"]["normal"]["ready"] == 3, 10)
        again = await builder.build()
    assert snapshot["management"] == {"available": False, "url": f"http://127.0.0.1:{closed}"}
    for shot in (snapshot, again):
        assert shot["health"]["rabbitmq"] == "up"
        assert shot["queues"]["normal"] == {
            "ready": 3,
            "consumers": 0,
            "unacked": None,
            "rates": None,
        }
        assert all(q["unacked"] is None and q["rates"] is None for q in shot["queues"].values())


async def test_wrong_credentials_fall_back_too(
    settings: Settings,
    redis_client: aioredis.Redis,
    broker: AbstractRobustConnection,
    needs_management: None,
) -> None:
    target = ManagementTarget.from_urls(settings.RABBITMQ_URL, settings.RABBITMQ_MANAGEMENT_URL)
    wrong = target.base_url.replace("://", "://guest:not-the-password@", 1)
    settings = settings.model_copy(update={"RABBITMQ_MANAGEMENT_URL": wrong})
    async with building(settings, sources(redis_client, settings)) as builder:
        snapshot = await build_until(builder, lambda s: True, 10)
    assert snapshot["management"]["available"] is False
    assert snapshot["queues"]["normal"]["unacked"] is None
    assert snapshot["queues"]["normal"]["ready"] == 0


async def amqp_link_up(builder: SnapshotBuilder) -> None:
    """Waits for the passive declares to answer, without building a snapshot."""
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(BrokerUnavailableError):
                await builder.broker.counts()
                return
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers a byte."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_silent_management_api_never_holds_up_a_snapshot(
    settings: Settings, redis_client: aioredis.Redis, broker: AbstractRobustConnection
) -> None:
    async with silent_server() as port:
        settings = settings.model_copy(
            update={"RABBITMQ_MANAGEMENT_URL": f"http://127.0.0.1:{port}"}
        )
        async with building(settings, sources(redis_client, settings)) as builder:
            await amqp_link_up(builder)
            durations: list[float] = []
            shots: list[dict[str, Any]] = []
            # Longer than the HTTP timeout: a snapshot that waited on the API would take it.
            until = time.monotonic() + TIMEOUT_S * 2.5
            while time.monotonic() < until:
                start = time.monotonic()
                shots.append(await builder.build())
                durations.append(time.monotonic() - start)
                await asyncio.sleep(0.05)
    assert max(durations) < FIRST_WAIT_S + 0.5 < TIMEOUT_S
    assert all(shot["management"]["available"] is False for shot in shots)
    assert all(shot["queues"]["normal"]["unacked"] is None for shot in shots)
