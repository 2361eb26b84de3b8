"""RABBITMQ_URL with several nodes: a connection skips a node that does not answer, and a
one-off connection does the same."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from aio_pika.exceptions import AMQPConnectionError

from tests.conftest import RABBITMQ_URL
from tests.ports import free_port
from ttsqueue.broker.connection import ClusterConnection, connect_broker, connect_plain

pytestmark = pytest.mark.timeout(60)


def _dead_node() -> str:
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/"


async def test_a_robust_connection_skips_a_node_that_is_down() -> None:
    connection = await connect_broker(f"{_dead_node()},{RABBITMQ_URL}", name="pytest-nodes")
    try:
        assert isinstance(connection, ClusterConnection)
        live = urlsplit(RABBITMQ_URL)
        assert connection.node == f"{live.hostname}:{live.port or 5672}"
        channel = await connection.channel()
        queue = await channel.declare_queue("", exclusive=True)
        assert queue.name
    finally:
        await connection.close()


async def test_a_plain_connection_skips_a_node_that_is_down() -> None:
    connection = await connect_plain(f"{_dead_node()},{RABBITMQ_URL}", name="pytest-nodes")
    async with connection:
        assert not connection.is_closed


async def test_no_node_answering_fails_fast() -> None:
    with pytest.raises((AMQPConnectionError, ConnectionError, OSError)):
        await connect_broker(f"{_dead_node()},{_dead_node()}", name="pytest-nodes")


def _connection_tasks() -> list[asyncio.Task[object]]:
    """This loop's tasks that keep an AMQP connection alive: aio-pika's reconnection task,
    aiormq's reader and writer."""
    names = ("__connection_factory", "Connection.__reader", "Connection.__writer")
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and any(n in getattr(task.get_coro(), "__qualname__", "") for n in names)
    ]


async def test_a_connect_given_up_leaves_no_connection_behind() -> None:
    """A caller cancelled while connecting (a stopping dashboard, a start interrupted): the
    robust connection's own task must not go on to finish the handshake and keep a connection
    that nobody holds or closes."""
    for delay in (0.0, 0.002, 0.005, 0.01, 0.02):
        attempt = asyncio.create_task(connect_broker(RABBITMQ_URL, name="pytest-given-up"))
        await asyncio.sleep(delay)
        attempt.cancel()
        try:
            connection = await attempt
        except asyncio.CancelledError:
            continue
        await connection.close()  # connected before the cancel landed: closed by its holder
    await asyncio.sleep(0.5)  # time for a handshake left running to complete
    assert _connection_tasks() == []
