"""RABBITMQ_URL with several nodes: a connection skips a node that does not answer, and a
one-off connection does the same."""

from __future__ import annotations

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
