"""Shared fixtures: settings isolated per test (own Redis prefix, own queue names, own audio dir)
and real Redis clients that wipe their keys afterwards."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests import broker_leftovers, redis_leftovers
from tests.faults.fixtures import private_redis as start_private_redis
from tests.faults.servers import RedisServer
from ttsqueue.api.app import create_app as create_api
from ttsqueue.broker.connection import connect_broker
from ttsqueue.broker.topology import QueueNames, declare_topology
from ttsqueue.config import Settings, load_settings
from ttsqueue.policy.clock import Clock
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.keys import Keys

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for one test: nothing it creates can collide with another test or a live system."""
    tag = uuid.uuid4().hex[:10]
    base: dict[str, object] = {
        "RABBITMQ_URL": RABBITMQ_URL,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": f"ttsqtest:{tag}:",
        "QUEUE_PREFIX": f"t{tag}_",
        "AUDIO_DIR": tmp_path / "audio",
        "TTS_ENGINE": "espeak",
        "TTS_FALLBACK_ENGINE": "",
        "DIALER": "simulator",
        "SIMULATOR_TIME_SCALE": 0.0,
        "WORKER_ID": f"test-worker-{tag}",
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
    }
    base.update(overrides)
    made = load_settings(**base)
    broker_leftovers.remember(made.QUEUE_PREFIX)
    return made


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    broker_leftovers.remove_remembered(RABBITMQ_URL)


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Per-test settings; `@pytest.mark.settings(NAME=value, ...)` overrides values. What the
    test (its API, its workers) left under its prefix on the shared Redis is deleted
    afterwards, whether or not it asked for `redis_client`."""
    marker = request.node.get_closest_marker("settings")
    made = make_settings(tmp_path, **(marker.kwargs if marker else {}))
    yield made
    redis_leftovers.wipe(REDIS_URL, made.REDIS_PREFIX)


async def wipe_prefix(client: aioredis.Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.delete(key)


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(settings.REDIS_URL, client_name="pytest")
    try:
        await client.ping()
        yield client
        await wipe_prefix(client, settings.REDIS_PREFIX)
    finally:
        # Closed even when the ping or the wipe failed: a client left open is collected
        # later, in another test's event loop, and fails that test with a ResourceWarning.
        await client.aclose()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone (own process and port): for what would reach other tests on
    the shared one (its command statistics, a script flush, refused writes, a cut)."""
    with start_private_redis(tmp_path / "private-redis") as server:
        yield server


@pytest.fixture
def keys(settings: Settings) -> Keys:
    """The key names under this test's Redis prefix."""
    return Keys(settings.REDIS_PREFIX)


@pytest.fixture
async def other_client(
    settings: Settings, redis_client: aioredis.Redis
) -> AsyncIterator[aioredis.Redis]:
    """A second connection, as another worker process would have (keys wiped by redis_client)."""
    client = aioredis.from_url(
        settings.REDIS_URL, decode_responses=True, client_name="pytest-other-worker"
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[AbstractRobustConnection]:
    """A real RabbitMQ connection with this test's topology; queues deleted afterwards."""
    connection = await connect_broker(settings.RABBITMQ_URL, name="pytest")
    channel = await connection.channel()
    names = await declare_topology(channel, settings)
    try:
        yield connection
    finally:
        await delete_topology(connection, names)
        await connection.close()


async def delete_topology(connection: AbstractRobustConnection, names: QueueNames) -> None:
    channel = await connection.channel()
    for queue in names.queues():
        await channel.queue_delete(queue)
    for exchange in names.exchanges():
        await channel.exchange_delete(exchange)
    await channel.close()


@contextlib.asynccontextmanager
async def in_process_api(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The real API app with its lifespan run, and a client that calls it without a socket."""
    app = create_api(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
async def api(
    settings: Settings, broker: AbstractRobustConnection, redis_client: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    """The API of `settings` in this process (a module may override `settings`)."""
    async with in_process_api(settings) as client:
        yield client
