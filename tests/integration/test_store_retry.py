"""Job creation is safe to run again: redis-py retries a command whose reply was lost (Redis
restarting, a connection reset after the script ran). The retry must still report the job as
created, or the API would answer 200 and never publish its message: a job lost."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.factories import lifecycle_of, make_job
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.lifecycle import IdempotencyClaim


def store_for(client: aioredis.Redis, settings: Settings) -> JobStore:
    return build_store(client, settings).jobs


async def test_a_retried_create_is_still_created_once(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    first = await lifecycle.create(job)
    retried = await lifecycle.create(job)
    assert (first.created, retried.created) == (True, True)
    assert retried.job_id == job.job_id
    assert (await store.counts_by_status())[0] == 1
    assert len(await store.history(job.job_id)) == 1


async def test_a_retried_idempotent_create_is_still_created(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    claim = IdempotencyClaim(key_digest="retried", body_digest="b")
    job = make_job()
    assert (await lifecycle.create(job, claim=claim)).created
    retried = await lifecycle.create(job, claim=claim)
    assert retried.created
    assert retried.job_id == job.job_id
    # Another request with the same key still gets the original job, not a new one.
    other = await lifecycle.create(make_job(), claim=claim)
    assert not other.created
    assert other.job_id == job.job_id
    assert (await store.counts_by_status())[0] == 1
