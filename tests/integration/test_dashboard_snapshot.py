"""The dashboard's snapshot and push hub against the real Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.factories import make_job
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.dashboard.broker_link import BrokerLink
from ttsqueue.dashboard.hub import Hub
from ttsqueue.dashboard.snapshot import RECENT_LIMIT, RecentFilter, SnapshotBuilder
from ttsqueue.dashboard.subscribers import Subscriber
from ttsqueue.domain import JobStatus, Priority
from ttsqueue.stats_snapshot import StatsSources
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys
from ttsqueue.store.stats import StatsReader
from ttsqueue.store.workers import WorkerInfo, WorkerRegistry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sources(redis: aioredis.Redis, settings: Settings) -> StatsSources:
    prefix = settings.REDIS_PREFIX
    return StatsSources(
        redis=redis,
        store=JobStore(redis, prefix, settings.JOB_TTL_SECONDS),
        registry=WorkerRegistry(redis, prefix),
        stats=StatsReader(redis, prefix),
        prefix=prefix,
        call_limit=settings.MAX_CONCURRENT_CALLS,
    )


@contextlib.asynccontextmanager
async def linked(settings: Settings, url: str | None = None) -> AsyncIterator[BrokerLink]:
    link = BrokerLink(url or settings.RABBITMQ_URL, QueueNames.from_prefix(settings.QUEUE_PREFIX))
    link.start()
    try:
        yield link
    finally:
        await link.close()


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await predicate():
                return
            await asyncio.sleep(0.05)


async def create_jobs(store: JobStore, count: int, **job_args: Any) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 500):
        batch = [make_job(**job_args) for _ in range(min(500, count - start))]
        await asyncio.gather(*(store.create(job) for job in batch))
        ids += [job.job_id for job in batch]
    return ids


@pytest.mark.timeout(120)
async def test_ten_thousand_jobs_and_twenty_workers(
    settings: Settings, redis_client: aioredis.Redis, broker: AbstractRobustConnection
) -> None:
    src = sources(redis_client, settings)
    await create_jobs(src.store, 9_000)
    await create_jobs(src.store, 1_000, priority=Priority.HIGH)
    for n in range(20):
        await src.registry.beat(
            WorkerInfo(worker_id=f"w{n:02d}", current_jobs=[f"job-{n}"] if n % 2 else [])
        )
    async with linked(settings) as link:
        builder = SnapshotBuilder(settings, src, link)
        await until(lambda: _rabbit_up(builder))
        snapshot = await builder.build()
        recent = await builder.recent(RecentFilter())
        high = await builder.recent(RecentFilter(priority=Priority.HIGH), limit=5)
    stats = snapshot["statistics"]
    assert stats["jobs"]["total"] == 10_000
    assert stats["jobs"]["by_status"]["queued"] == 10_000
    assert stats["workers"]["total"] == 20
    assert stats["workers"]["active"] == 10
    assert snapshot["in_flight"] == 10
    assert snapshot["health"] == {"redis": "up", "rabbitmq": "up"}
    assert len(recent) == RECENT_LIMIT
    assert [row["priority"] for row in high] == ["high"] * 5
    # The page gets one bounded message whatever the number of jobs.
    assert len(orjson.dumps({**snapshot, "recent": recent})) < 32 * 1024


async def _rabbit_up(builder: SnapshotBuilder) -> bool:
    snapshot = await builder.build()
    return bool(snapshot["health"]["rabbitmq"] == "up")


async def test_hub_pushes_every_event_in_few_coalesced_messages(
    settings: Settings, redis_client: aioredis.Redis, broker: AbstractRobustConnection
) -> None:
    src = sources(redis_client, settings)
    async with linked(settings) as link:
        hub = Hub(SnapshotBuilder(settings, src, link), redis_client, Keys(src.prefix).events)
        hub.start()
        try:
            sub = hub.subscribe(RecentFilter())
            await next_message(sub)  # the first picture, before any job
            await asyncio.sleep(0.3)  # the listener is subscribed by now
            ids = await create_jobs(src.store, 60)
            messages: list[dict[str, Any]] = []
            seen: list[str] = []
            while len(seen) < len(ids):
                message = await next_message(sub)
                messages.append(message)
                seen += [event["job_id"] for event in message["events"]]
        finally:
            await hub.stop()
    assert sorted(seen) == sorted(ids)
    assert all(e["status"] == "queued" for m in messages for e in m["events"])
    assert len(messages) < len(ids)
    last = messages[-1]
    assert last["statistics"]["jobs"]["total"] == 60
    assert {row["job_id"] for row in last["recent"]} <= set(ids)
    assert len(last["recent"]) == RECENT_LIMIT


async def next_message(sub: Subscriber) -> dict[str, Any]:
    async with asyncio.timeout(10):
        raw = await sub.queue.get()
    assert raw is not None
    message: dict[str, Any] = orjson.loads(raw)
    return message


async def test_filtered_subscribers_get_their_own_recent_list(
    settings: Settings, redis_client: aioredis.Redis, broker: AbstractRobustConnection
) -> None:
    src = sources(redis_client, settings)
    high = await create_jobs(src.store, 3, priority=Priority.HIGH)
    await create_jobs(src.store, 5)
    async with linked(settings) as link:
        hub = Hub(SnapshotBuilder(settings, src, link), redis_client, Keys(src.prefix).events)
        hub.start()
        try:
            everything = hub.subscribe(RecentFilter())
            only_high = hub.subscribe(RecentFilter(priority=Priority.HIGH))
            none_failed = hub.subscribe(RecentFilter(status=JobStatus.FAILED))
            all_rows = (await next_message(everything))["recent"]
            high_rows = (await next_message(only_high))["recent"]
            failed_rows = (await next_message(none_failed))["recent"]
        finally:
            await hub.stop()
    assert len(all_rows) == 8
    assert sorted(row["job_id"] for row in high_rows) == sorted(high)
    assert failed_rows == []


async def test_snapshot_without_rabbitmq_reports_it_and_keeps_redis_figures(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    src = sources(redis_client, settings)
    await create_jobs(src.store, 2)
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    async with linked(settings, nobody) as link:
        snapshot = await SnapshotBuilder(settings, src, link).build()
    assert snapshot["health"] == {"redis": "up", "rabbitmq": "down"}
    assert snapshot["queues"] is None
    assert snapshot["statistics"]["jobs"]["total"] == 2


async def test_snapshot_without_redis_keeps_the_last_figures_marked_stale(
    settings: Settings, redis_client: aioredis.Redis, broker: AbstractRobustConnection
) -> None:
    src = sources(redis_client, settings)
    await create_jobs(src.store, 4)
    async with linked(settings) as link:
        builder = SnapshotBuilder(settings, src, link)
        good = await builder.build()
        nowhere = connect_redis(f"redis://127.0.0.1:{free_port()}/0", client_name="pytest")
        try:
            builder.sources = sources(nowhere, settings)
            stale = await builder.build()
        finally:
            await nowhere.aclose()
    assert good["health"]["redis"] == "up"
    assert stale["health"]["redis"] == "down"
    assert stale["stale_since"] is not None
    assert stale["statistics"]["jobs"]["total"] == 4
