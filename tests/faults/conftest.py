"""Fixtures of the fault suite: a private RabbitMQ node and a private Redis (append-only) for
the whole session, since RabbitMQ takes seconds to boot, and one isolated `Stack` per test.

A test may stop or restart a server; the `stack` fixture brings it back if the test did not,
removes the test's queues and keys, and stops every process the test started.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest
import redis.asyncio as aioredis

from tests.faults.servers import RabbitServer, RedisServer, port_open, rabbitmq_tool
from tests.faults.stack import Stack


def missing(binary: str) -> str:
    """Why the fault suite cannot run: it never skips, since `./manage.sh check` installs
    what it needs."""
    return (
        f"the fault suite needs {binary} to start private servers, and it is not installed: "
        f"run `./manage.sh check` as root (it installs it with apt), or `apt-get install {binary}`"
    )


@pytest.fixture(scope="session")
def fault_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ttsq-faults-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def rabbit_server(fault_dir: Path) -> Iterator[RabbitServer]:
    if rabbitmq_tool("rabbitmq-server") is None:
        pytest.fail(missing("rabbitmq-server"), pytrace=False)
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
    if shutil.which("redis-server") is None:
        pytest.fail(missing("redis-server"), pytrace=False)
    base = fault_dir / "redis"
    base.mkdir()
    server = RedisServer(base)
    try:
        server.start()
        yield server
    finally:
        server.close()


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
        await _delete_keys(stack)


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


async def _delete_keys(stack: Stack) -> None:
    client = aioredis.Redis.from_url(stack.redis.url)
    try:
        async for key in client.scan_iter(match=f"{stack.redis_prefix}*", count=1000):
            await client.unlink(key)
    finally:
        await client.aclose()
