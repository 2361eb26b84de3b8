"""`ttsqueue clean` against the real RabbitMQ and Redis: only this test's state goes away."""

from __future__ import annotations

import uuid
from pathlib import Path

import aio_pika
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import make_settings, wipe_prefix
from ttsqueue.broker.topology import QueueNames, declare_topology
from ttsqueue.config import Settings
from ttsqueue.ops.clean import clear_queues, clear_redis, empty_directory, is_safe_to_empty


async def publish(connection: AbstractRobustConnection, queue: str, count: int) -> None:
    channel = await connection.channel()
    for n in range(count):
        await channel.default_exchange.publish(aio_pika.Message(f"m{n}".encode()), queue)
    await channel.close()


async def test_purge_empties_queues_and_keeps_them(
    settings: Settings, broker: AbstractRobustConnection
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    await publish(broker, names.calls, 3)
    await publish(broker, names.dead, 1)
    await publish(broker, names.hold, 2)
    removed = await clear_queues(settings, delete=False)
    assert removed == {
        names.calls: 3,
        names.priority: 0,
        names.results: 0,
        names.retry: 0,
        names.hold: 2,
        names.dead: 1,
    }
    channel = await broker.channel()
    queue = await channel.declare_queue(names.calls, passive=True)
    assert queue.declaration_result.message_count == 0
    await channel.close()


async def test_delete_removes_a_queue_declared_with_other_arguments(
    settings: Settings, broker: AbstractRobustConnection
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    removed = await clear_queues(settings, delete=True)
    assert set(removed) == set(names.by_label().values())
    channel = await broker.channel()
    # Re-create one queue with arguments this version does not use, then delete again.
    await channel.declare_queue(names.dead, durable=True, arguments={"x-max-length": 7})
    await channel.close()
    removed = await clear_queues(settings, delete=True)
    assert removed[names.dead] == 0
    assert removed[names.calls] is None
    channel = await broker.channel()
    await declare_topology(channel, settings)  # no PRECONDITION_FAILED any more
    await channel.close()


async def test_purge_of_missing_queues_reports_them_absent(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    removed = await clear_queues(settings, delete=False)
    assert set(removed.values()) == {None}


async def test_clear_redis_only_touches_its_prefix(
    tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    tag = uuid.uuid4().hex[:8]
    # Glob characters in the prefix are matched literally, not as a pattern.
    settings = make_settings(tmp_path, REDIS_PREFIX=f"ttsqtest:{tag}:[a]*:")
    neighbour = f"ttsqtest:{tag}:a-neighbour:"
    try:
        for n in range(1200):
            await redis_client.set(f"{settings.REDIS_PREFIX}k{n}", "x")
        await redis_client.set(f"{neighbour}keep", "x")
        assert await clear_redis(settings) == 1200
        assert await redis_client.exists(f"{neighbour}keep") == 1
        assert await redis_client.exists(f"{settings.REDIS_PREFIX}k5") == 0
    finally:
        await wipe_prefix(redis_client, f"ttsqtest:{tag}:")


def test_empty_directory_keeps_the_directory(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    (audio / "cache").mkdir(parents=True)
    (audio / "cache" / "a.wav").write_bytes(b"x")
    (audio / "b.wav").write_bytes(b"x")
    assert empty_directory(audio) == 2
    assert audio.is_dir()
    assert list(audio.iterdir()) == []
    assert empty_directory(tmp_path / "missing") == 0


def test_refuses_to_empty_dangerous_directories(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    assert not is_safe_to_empty(Path("/"), root)
    assert not is_safe_to_empty(Path.home(), root)
    assert not is_safe_to_empty(root, root)
    assert not is_safe_to_empty(tmp_path, root)
    assert is_safe_to_empty(root / "var" / "audio", root)
