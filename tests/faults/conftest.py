"""Fixtures of the fault suite: a private RabbitMQ node and a private Redis (append-only) for
the whole session, since RabbitMQ takes seconds to boot, and one isolated `Stack` per test.

A test may stop or restart a server; the `stack` fixture brings it back if the test did not,
removes the test's queues and keys, and stops every process the test started.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis

from tests.faults.fixtures import delete_keys, private_redis, require_rabbitmq, scratch_dir
from tests.faults.servers import RabbitServer, RedisServer, port_open
from tests.faults.stack import Stack


@pytest.fixture(scope="session")
def fault_dir() -> Iterator[Path]:
    with scratch_dir("ttsq-faults-") as path:
        yield path


@pytest.fixture(scope="session")
def rabbit_server(fault_dir: Path) -> Iterator[RabbitServer]:
    require_rabbitmq()
    base = fault_dir / "rabbitmq"
    base.mkdir()
    server = RabbitServer(base)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_server(fault_dir: Path) -> Iterator[RedisServer]:
    with private_redis(fault_dir / "redis") as server:
        yield server


@pytest.fixture
async def stack(
    rabbit_server: RabbitServer, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Stack]:
    stack = Stack(rabbit_server, redis_server, tmp_path)
    try:
        yield stack
    finally:
        stack.close()
        if not port_open(rabbit_server.port):
            rabbit_server.restart()
        if not port_open(redis_server.port):
            redis_server.restart()
        await _delete_queues(stack)
        client = aioredis.Redis.from_url(stack.redis.url)
        try:
            await delete_keys(client, stack.redis_prefix)
        finally:
            await client.aclose()


@pytest.fixture
async def fault_redis(stack: Stack) -> AsyncIterator[aioredis.Redis]:
    """A plain client of the private Redis (retries across its restarts)."""
    client = aioredis.Redis.from_url(stack.redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def _delete_queues(stack: Stack) -> None:
    names = stack.names
    connection = await aio_pika.connect(stack.rabbit.url)
    # Every queue and every exchange the topology names, whatever this version declares.
    exchanges = [getattr(names, f.name) for f in dataclasses.fields(names) if "exchange" in f.name]
    async with connection:
        for queue in names.by_label().values():
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue)
        for exchange in exchanges:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(exchange)
