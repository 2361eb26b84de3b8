"""Worker behaviour at the edges: poison messages, technical retries, heartbeats, the reaper."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.factories import lifecycle_for, make_job
from tests.in_process import eventually, publish_job, running_worker
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import AudioInfo, JobMessage, JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys
from ttsqueue.store.workers import WorkerRegistry

pytestmark = pytest.mark.timeout(60)


def store_of(redis_client: Any, settings: Settings) -> JobStore:
    return build_store(redis_client, settings).jobs


async def test_poison_messages_go_to_dead_and_work_goes_on(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    store = store_of(redis_client, settings)
    channel = await broker.channel()
    unknown = JobMessage(job_id=str(uuid.uuid4())).encode()
    known = make_job()
    await lifecycle_for(store).create(known)
    poison = [
        (b"not json at all", "p1"),
        (b'{"job_id": 5}', "p2"),
        (unknown, "p3"),
        # The body names a real job but the message id names another one.
        (JobMessage(job_id=known.job_id).encode(), str(uuid.uuid4())),
    ]
    for body, message_id in poison:
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=message_id), routing_key=names.calls
        )
    good = await publish_job(broker, settings, store)
    inspector = QueueInspector(broker, names)
    async with running_worker(settings):
        await eventually(lambda: _status_is(store, good, JobStatus.COMPLETED))
        await eventually(lambda: _depth_is(inspector, "dead", len(poison)))
    assert await store.get_status(known.job_id) is JobStatus.QUEUED


async def _status_is(store: JobStore, job_id: str, status: JobStatus) -> bool:
    return await store.get_status(job_id) is status


async def _depth_is(inspector: QueueInspector, label: str, n: int) -> bool:
    return (await inspector.depths())[label] == n


@pytest.mark.settings(TTS_ENGINE="gtts", TTS_FALLBACK_ENGINE="espeak", GTTS_TIMEOUT=1.0)
async def test_unreachable_google_falls_back_to_espeak(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    store = store_of(redis_client, settings)
    job = make_job()
    job.engine = "gtts"
    await lifecycle_for(store).create(job)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    await Publisher(broker, names).to_work_queue(
        names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id
    )
    async with running_worker(settings):
        await eventually(lambda: _status_is(store, job.job_id, JobStatus.COMPLETED))
    done = await store.get(job.job_id)
    assert done is not None
    assert done.audio.engine == "espeak"


@pytest.mark.settings(
    TTS_ENGINE="gtts",
    TTS_FALLBACK_ENGINE="",
    GTTS_TIMEOUT=1.0,
    TECH_MAX_RETRIES=2,
    TECH_RETRY_BASE_SECONDS=0.2,
)
async def test_technical_failures_back_off_then_fail_and_dead_letter(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    store = store_of(redis_client, settings)
    job = make_job()
    job.engine = "gtts"
    await lifecycle_for(store).create(job)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    await Publisher(broker, names).to_work_queue(
        names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id
    )
    inspector = QueueInspector(broker, names)
    async with running_worker(settings):
        await eventually(lambda: _status_is(store, job.job_id, JobStatus.FAILED))
        await eventually(lambda: _depth_is(inspector, "dead", 1))
    history = [h.status for h in await store.history(job.job_id)]
    assert history == [
        "queued",
        "processing",
        "queued",
        "processing",
        "queued",
        "processing",
        "failed",
    ]
    failed = await store.get(job.job_id)
    assert failed is not None
    assert failed.error is not None
    assert "technical" in failed.error


@pytest.mark.settings(MAX_DELIVERIES=2)
async def test_a_message_that_keeps_killing_its_worker_is_given_up(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    store = store_of(redis_client, settings)
    job_id = await publish_job(broker, settings, store)
    # Two earlier deliveries of this very message died with their workers.
    await redis_client.set(store.keys.deliveries(job_id, 1, 0), 2)
    inspector = QueueInspector(broker, QueueNames.from_prefix(settings.QUEUE_PREFIX))
    async with running_worker(settings):
        await eventually(lambda: _status_is(store, job_id, JobStatus.FAILED))
        await eventually(lambda: _depth_is(inspector, "dead", 1))
    failed = await store.get(job_id)
    assert failed is not None
    assert failed.error is not None
    assert "delivered 2 times" in failed.error
    assert "calling" not in [h.status for h in await store.history(job_id)]


async def test_heartbeat_registers_and_deregisters(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    registry = WorkerRegistry(redis_client, Keys(settings.REDIS_PREFIX))
    async with running_worker(settings):
        await eventually(lambda: _worker_count(registry, 1))
        (info,) = await registry.alive()
        assert info.worker_id == settings.WORKER_ID
        assert info.concurrency == settings.WORKER_CONCURRENCY
        ttl = await redis_client.ttl(registry.keys.worker(settings.WORKER_ID))
        assert 0 < ttl <= 6
    assert await registry.alive() == []


async def _worker_count(registry: WorkerRegistry, n: int) -> bool:
    return len(await registry.alive()) == n


@pytest.mark.settings(CALL_MAX_DURATION=1)
async def test_reaper_fails_calls_that_lost_track(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    store = store_of(redis_client, settings)
    job = make_job()
    lifecycle = lifecycle_for(store)
    await lifecycle.create(job)
    processing = (await lifecycle.start(job, "gone-worker")).job
    await lifecycle.mark_calling(  # attempt 1's call placed, then its worker vanished
        processing, 1, audio=AudioInfo(), backend="simulator", started_at=time.time(), detail="x"
    )
    await asyncio.sleep(1.1)
    async with running_worker(settings):
        await eventually(lambda: _status_is(store, job.job_id, JobStatus.FAILED))
    failed = await store.get(job.job_id)
    assert failed is not None
    assert failed.call.reason == "lost_track"
