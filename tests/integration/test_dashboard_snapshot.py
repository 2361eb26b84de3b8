"""The dashboard's snapshot and push hub against the real Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.factories import lifecycle_for, make_job
from tests.faults.servers import RedisServer
from tests.ports import free_port
from ttsqueue.broker.management import ManagementClient, ManagementTarget
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.dashboard.broker_link import BrokerLink
from ttsqueue.dashboard.hub import Hub
from ttsqueue.dashboard.management_view import ManagementView
from ttsqueue.dashboard.snapshot import RECENT_LIMIT, RecentFilter, SnapshotBuilder
from ttsqueue.dashboard.subscribers import Subscriber
from ttsqueue.domain import JobStatus, Priority
from ttsqueue.stats_snapshot import StatsSources
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys
from ttsqueue.store.stats import StatsReader
from ttsqueue.store.workers import WorkerInfo, WorkerRegistry


def sources(redis: aioredis.Redis, settings: Settings) -> StatsSources:
    prefix = settings.REDIS_PREFIX
    return StatsSources(
        redis=redis,
        store=JobStore(redis, Keys(prefix), settings.JOB_TTL_SECONDS),
        registry=WorkerRegistry(redis, Keys(prefix)),
        stats=StatsReader(redis, Keys(prefix)),
        keys=Keys(prefix),
        servers=settings.asterisk_servers,
    )


@contextlib.asynccontextmanager
async def linked(settings: Settings, url: str | None = None) -> AsyncIterator[BrokerLink]:
    link = BrokerLink(url or settings.RABBITMQ_URL, QueueNames.from_prefix(settings.QUEUE_PREFIX))
    link.start()
    try:
        yield link
    finally:
        await link.close()


@contextlib.asynccontextmanager
async def management(settings: Settings) -> AsyncIterator[ManagementView]:
    """The management API as configured (the derived default unless the test overrides it)."""
    target = ManagementTarget.from_urls(settings.RABBITMQ_URL, settings.RABBITMQ_MANAGEMENT_URL)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX).by_label()
    view = ManagementView(ManagementClient(target), names)
    try:
        yield view
    finally:
        await view.close()


@contextlib.asynccontextmanager
async def building(settings: Settings, src: StatsSources) -> AsyncIterator[SnapshotBuilder]:
    async with linked(settings) as link, management(settings) as view:
        yield SnapshotBuilder(settings, src, link, view)


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
        await asyncio.gather(*(lifecycle_for(store).create(job) for job in batch))
        ids += [job.job_id for job in batch]
    return ids


# Connection set-up and the measurement's own commands, not part of a snapshot's cost; nor
# the health-check PING redis-py sends on a connection left idle for 15 s (on a loaded
# machine, creating the 9,900 jobs can take that long).
NOT_COUNTED = (
    "cmdstat_ping",
    "cmdstat_hello",
    "cmdstat_client|",
    "cmdstat_select",
    "cmdstat_info",
    "cmdstat_config|",
)


async def snapshot_cost(
    admin: aioredis.Redis, builder: SnapshotBuilder
) -> tuple[Counter[str], int]:
    """Redis commands (by name) and reply bytes of one push: the snapshot and two recent lists."""
    await admin.config_resetstat()
    await builder.build()
    await builder.recent(RecentFilter())
    await builder.recent(RecentFilter(status=JobStatus.QUEUED, priority=Priority.HIGH))
    info: dict[str, Any] = await admin.info("everything")
    calls = Counter(
        {
            name.removeprefix("cmdstat_"): int(stats["calls"])
            for name, stats in info.items()
            if name.startswith("cmdstat_") and not name.startswith(NOT_COUNTED)
        }
    )
    return calls, int(info["total_net_output_bytes"])


async def beat_twenty_workers(redis: aioredis.Redis, src: StatsSources) -> None:
    for n in range(20):
        worker_id = f"w{n:02d}"
        await src.registry.beat(
            WorkerInfo(
                worker_id=worker_id,
                current_jobs=[f"job-{n}-{k}" for k in range(n % 3)],
                concurrency=2,
                last_heartbeat=f"2026-01-01T00:00:{n:02d}+00:00",
            )
        )
        await redis.hset(
            src.keys.worker_stats(worker_id), mapping={"processed": n * 10, "failed": n}
        )


@pytest.mark.timeout(180)
async def test_a_snapshot_costs_the_same_with_100_or_10000_jobs_and_lists_20_workers(
    settings: Settings, private_redis: RedisServer, broker: AbstractRobustConnection
) -> None:
    """SPEC §5/§8: the dashboard never loads all jobs, whatever their number."""
    settings = settings.model_copy(update={"REDIS_URL": private_redis.url})
    redis = connect_redis(private_redis.url, client_name="pytest-dashboard")
    admin = connect_redis(private_redis.url, client_name="pytest-admin")
    try:
        src = sources(redis, settings)
        await beat_twenty_workers(redis, src)
        # Enough of each kind to fill every list the push reads: only the job count changes.
        await create_jobs(src.store, 70)
        await create_jobs(src.store, 30, priority=Priority.HIGH)
        async with building(settings, src) as builder:
            await until(lambda: _rabbit_up(builder))
            await snapshot_cost(admin, builder)  # warm: the pool's connections are open
            await beat_twenty_workers(redis, src)
            small_calls, small_bytes = await snapshot_cost(admin, builder)
            await create_jobs(src.store, 8_930)
            await create_jobs(src.store, 970, priority=Priority.HIGH)
            # Creating 9,900 jobs can outlast a heartbeat's 6 s on a loaded machine: the
            # workers beat again, or the read would forget (SREM) the ones that expired.
            await beat_twenty_workers(redis, src)
            big_calls, big_bytes = await snapshot_cost(admin, builder)
            snapshot = await builder.build()
            recent = await builder.recent(RecentFilter())
            high = await builder.recent(RecentFilter(priority=Priority.HIGH), limit=5)
    finally:
        await redis.aclose()
        await admin.aclose()

    # Same commands, same number of each, whether 100 or 10,000 jobs exist ...
    assert big_calls == small_calls
    # ... bounded by the page (25 jobs per list) and the workers (2 hashes each, and the one
    # hash of dialer heartbeats that tells each Asterisk server's state), not the jobs.
    assert small_calls["hgetall"] <= 2 * RECENT_LIMIT + 2 * 20 + 5
    assert sum(small_calls.values()) <= small_calls["hgetall"] + 30
    assert not {"keys", "scan", "hscan", "zscan", "sscan"} & set(big_calls)
    # ... and replies of about the same size: reading every job id alone would be > 360 KB.
    assert big_bytes < small_bytes * 1.1 + 1024
    assert big_bytes < 96 * 1024

    stats = snapshot["statistics"]
    assert stats["jobs"]["total"] == 10_000
    assert stats["jobs"]["by_status"]["queued"] == 10_000
    assert snapshot["health"] == {"redis": "up", "rabbitmq": "up"}
    workers = stats["workers"]
    assert (workers["total"], workers["active"], workers["idle"]) == (20, 13, 7)
    assert [w["worker_id"] for w in workers["list"]] == [f"w{n:02d}" for n in range(20)]
    for n, row in enumerate(workers["list"]):
        assert row["current_jobs"] == [f"job-{n}-{k}" for k in range(n % 3)]
        assert (row["processed"], row["failed"], row["concurrency"]) == (n * 10, n, 2)
        assert row["status"] == ("busy" if n % 3 else "idle")
        assert row["last_heartbeat"] == f"2026-01-01T00:00:{n:02d}+00:00"
    assert snapshot["in_flight"] == sum(n % 3 for n in range(20))
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
    async with building(settings, src) as builder:
        hub = Hub(builder, redis_client, src.keys.events)
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
    async with building(settings, src) as builder:
        hub = Hub(builder, redis_client, src.keys.events)
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
    async with linked(settings, nobody) as link, management(settings) as view:
        snapshot = await SnapshotBuilder(settings, src, link, view).build()
    assert snapshot["health"] == {"redis": "up", "rabbitmq": "down"}
    assert snapshot["queues"] is None
    assert snapshot["statistics"]["jobs"]["total"] == 2


async def test_snapshot_without_redis_keeps_the_last_figures_marked_stale(
    settings: Settings, redis_client: aioredis.Redis, broker: AbstractRobustConnection
) -> None:
    src = sources(redis_client, settings)
    await create_jobs(src.store, 4)
    async with building(settings, src) as builder:
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
