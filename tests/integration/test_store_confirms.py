"""Confirms asked for together go to Redis together, and each caller gets its own answer;
confirms handed over without waiting are written the same way, and their failure is logged."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from structlog.testing import capture_logs

from tests.factories import lifecycle_of, make_job
from ttsqueue.config import Settings
from ttsqueue.domain import Job
from ttsqueue.store.confirms import ConfirmBatcher
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import IdempotencyClaim, JobLifecycle
from ttsqueue.store.scripts import load_script


class CountedScript:
    """The real confirm script, counting the calls made to Redis."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.script = load_script(client, "confirm_job")
        self.calls = 0

    async def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.script(**kwargs)


class RedisDown:
    """A confirm script whose every call fails as a lost connection does."""

    async def __call__(self, **kwargs: Any) -> Any:
        raise ConnectionError("redis down")


async def created_with_keys(
    lifecycle: JobLifecycle, count: int, tag: str
) -> list[tuple[Job, IdempotencyClaim]]:
    """`count` jobs recorded (unconfirmed), each with an Idempotency-Key of its own."""
    pairs = [
        (make_job(), IdempotencyClaim(key_digest=f"{tag}{i}", body_digest="b"))
        for i in range(count)
    ]
    for job, claim in pairs:
        await lifecycle.create(job, claim=claim)
    return pairs


async def assert_keys_lead_to_their_jobs(
    lifecycle: JobLifecycle, pairs: list[tuple[Job, IdempotencyClaim]]
) -> None:
    """Each key, confirmed, now gives its job back instead of waiting (no longer pending)."""
    for job, claim in pairs:
        again = await lifecycle.create(make_job(), claim=claim)
        assert (again.created, again.job_id, again.pending) == (False, job.job_id, False)


async def test_concurrent_confirms_are_one_call_and_each_gets_its_answer(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    lifecycle = lifecycle_of(redis_client, settings)
    keys = Keys(settings.REDIS_PREFIX)
    pairs = await created_with_keys(lifecycle, 40, "k")
    assert await redis_client.zcard(keys.unconfirmed) == 40
    counted = CountedScript(redis_client)
    batcher = ConfirmBatcher(counted, keys)  # type: ignore[arg-type]
    first = await asyncio.gather(*(batcher.confirm(j.job_id, c.key_digest) for j, c in pairs))
    assert first == [True] * 40
    assert counted.calls == 1
    assert await redis_client.zcard(keys.unconfirmed) == 0
    await assert_keys_lead_to_their_jobs(lifecycle, pairs)
    # Confirmed already: False for each.
    again = await asyncio.gather(*(batcher.confirm(j.job_id, None) for j, _ in pairs))
    assert again == [False] * 40
    assert counted.calls == 2


async def test_a_failed_batch_fails_every_caller(settings: Settings) -> None:
    batcher = ConfirmBatcher(RedisDown(), Keys(settings.REDIS_PREFIX))  # type: ignore[arg-type]
    results = await asyncio.gather(
        *(batcher.confirm(f"job-{i}", None) for i in range(3)), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError] * 3


async def test_confirms_handed_over_are_one_call_written_by_drain(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    lifecycle = lifecycle_of(redis_client, settings)
    keys = Keys(settings.REDIS_PREFIX)
    pairs = await created_with_keys(lifecycle, 30, "soon")
    extra = make_job()
    await lifecycle.create(extra)
    counted = CountedScript(redis_client)
    batcher = ConfirmBatcher(counted, keys)  # type: ignore[arg-type]
    for job, claim in pairs:
        batcher.confirm_soon(job.job_id, claim.key_digest)
    # A caller that waits, in the same turn, shares the call and gets its own answer.
    assert await batcher.confirm(extra.job_id, None) is True
    await batcher.drain()
    assert counted.calls == 1
    assert await redis_client.zcard(keys.unconfirmed) == 0
    await assert_keys_lead_to_their_jobs(lifecycle, pairs)


async def test_a_failed_batch_logs_the_jobs_nobody_waits_for(settings: Settings) -> None:
    batcher = ConfirmBatcher(RedisDown(), Keys(settings.REDIS_PREFIX))  # type: ignore[arg-type]
    with capture_logs() as logs:
        batcher.confirm_soon("job-a", "digest")
        waited = asyncio.ensure_future(batcher.confirm("job-b", None))
        batcher.confirm_soon("job-c", None)
        await batcher.drain()
        results = await asyncio.gather(waited, return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError]
    warnings = [e for e in logs if e["event"] == "jobs queued but not marked confirmed"]
    assert len(warnings) == 1
    assert warnings[0]["job_ids"] == ["job-a", "job-c"]
    assert "redis down" in warnings[0]["error"]
