"""A job record lost by Redis (a failover promoting a replica that had not received it yet) is
rebuilt by the worker from the copy its message carries: the job runs instead of being dropped.
A job whose submission was refused is never brought back; WAIT covers the API's writes."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import in_process_api
from tests.factories import make_job
from tests.in_process import running_worker, terminal, wait_for
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import JobLifecycle
from ttsqueue.store.replication import wait_replicated

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.settings(SIMULATOR_TIME_SCALE=0.01, WORKER_CONCURRENCY=2),
]

CALL = {"text": "Su código es 4821.", "phone_number": "3005050149"}


async def test_a_lost_record_is_rebuilt_and_the_call_made(
    settings: Settings, broker: AbstractRobustConnection, redis_client: aioredis.Redis
) -> None:
    keys = Keys(settings.REDIS_PREFIX)
    async with in_process_api(settings) as api:
        # Accepted while no worker runs; then the record vanishes, as after a failover.
        reply = await api.post("/tts/call", json=CALL)
        assert reply.status_code == 202
        job_id = str(reply.json()["job_id"])
        await redis_client.delete(keys.job(job_id), keys.history(job_id))
        assert (await api.get(f"/tts/status/{job_id}")).status_code == 404
        async with running_worker(settings):
            # 404 until a worker takes the message and rebuilds the record.
            body = await wait_for(
                api, job_id, lambda b: b.get("status") is not None and terminal(b)
            )
    assert body["status"] == "completed"
    assert body["text"] == CALL["text"]
    assert body["call"]["outcome"] == "answered"


async def test_a_refused_submission_is_not_brought_back(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    store = build_store(redis_client, settings)
    job = make_job()
    message = JobMessage(job_id=job.job_id, record=job.model_dump(mode="json"))
    # Created, then refused (its message not confirmed): discarding marks it refused.
    assert (await store.lifecycle.create(job)).created
    await store.lifecycle.discard(job.job_id)
    assert await store.lifecycle.rebuild(message) is None
    assert await store.jobs.get(job.job_id) is None


async def test_rebuild_needs_a_copy_of_the_same_job_and_not_a_stale_one(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    store = build_store(redis_client, settings)
    job = make_job()
    other = make_job()
    without = JobMessage(job_id=job.job_id)
    foreign = JobMessage(job_id=job.job_id, record=other.model_dump(mode="json"))
    stale = JobMessage(
        job_id=job.job_id,
        record={**job.model_dump(mode="json"), "created_at": "2020-01-01T00:00:00.000Z"},
    )
    for message in (without, foreign, stale):
        assert await store.lifecycle.rebuild(message) is None
    assert await store.jobs.get(job.job_id) is None
    lifecycle = JobLifecycle(redis_client, store.keys, 3600)
    assert await lifecycle.rebuild(
        JobMessage(job_id=job.job_id, record=job.model_dump(mode="json"))
    )
    rebuilt = await store.jobs.get(job.job_id)
    assert rebuilt is not None
    assert rebuilt.status == job.status
    assert rebuilt.text == job.text
    # Not left "unconfirmed": the sweeper must not take it for a never-acknowledged job.
    assert await redis_client.zscore(f"{settings.REDIS_PREFIX}jobs:unconfirmed", job.job_id) is None


async def test_wait_reports_how_many_replicas_hold_the_writes(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    replicas = int((await redis_client.info("replication"))["connected_slaves"])
    started = time.monotonic()
    acked = await wait_replicated(redis_client, Keys(settings.REDIS_PREFIX), replicas + 1, 50)
    assert acked == replicas
    # Bounded by the timeout even when fewer replicas exist than asked for.
    assert time.monotonic() - started < 5
