"""Job records on real Redis: atomic creation, compare-and-set, exact counters, idempotency."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from tests.factories import calling_job, lifecycle_of, make_job
from ttsqueue.config import Settings
from ttsqueue.domain import (
    AudioInfo,
    CallInfo,
    CallOutcome,
    Job,
    JobStatus,
    Priority,
    iso,
    utcnow,
)
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore, PageCursor
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import IdempotencyClaim
from ttsqueue.store.workers import WORKER_STATS_TTL_S, WorkerInfo, WorkerRegistry


def store_for(client: aioredis.Redis, settings: Settings) -> JobStore:
    return build_store(client, settings).jobs


async def test_create_then_read_back(redis_client: aioredis.Redis, settings: Settings) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    assert (await lifecycle.create(job)).created
    loaded = await store.get(job.job_id)
    assert loaded is not None
    assert loaded.model_dump() == job.model_dump()
    history = await store.history(job.job_id)
    assert [h.status for h in history] == [JobStatus.QUEUED]
    total, by_status = await store.counts_by_status()
    assert total == 1
    assert by_status["queued"] == 1
    assert await redis_client.ttl(store.keys.job(job.job_id)) > 0


async def test_transition_refuses_moves_not_allowed(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    await lifecycle.create(job)
    answered = CallInfo(outcome=CallOutcome.ANSWERED)
    late = await lifecycle.finish(job, JobStatus.COMPLETED, answered, worker_id="w", detail="x")
    assert not late.applied
    assert late.previous is JobStatus.QUEUED
    started = await lifecycle.start(job, "w")
    assert started.applied
    assert started.job.status is JobStatus.PROCESSING
    calling = await lifecycle.mark_calling(
        started.job, 1, audio=AudioInfo(), backend="simulator", started_at=0.0, detail="placed"
    )
    assert calling.status is JobStatus.CALLING
    done = await lifecycle.finish(calling, JobStatus.COMPLETED, answered, worker_id="w", detail="x")
    assert done.applied
    # A duplicate message can never move a finished job back.
    again = await lifecycle.start(job, "w")
    assert not again.applied
    assert await store.get_status(job.job_id) is JobStatus.COMPLETED
    statuses = [h.status for h in await store.history(job.job_id)]
    assert statuses == ["queued", "processing", "calling", "completed"]


async def test_concurrent_compare_and_set_has_one_winner(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    jobs = [make_job() for _ in range(20)]
    for job in jobs:
        await lifecycle.create(job)

    async def race(job: Job) -> int:
        starts = [lifecycle.start(job, f"w{i}") for i in range(10)]
        started, canceled = await asyncio.gather(asyncio.gather(*starts), lifecycle.cancel(job))
        return sum(s.applied for s in started) + canceled.applied

    winners = await asyncio.gather(*(race(job) for job in jobs))
    assert winners == [1] * len(jobs)
    total, by_status = await store.counts_by_status()
    assert total == 20
    assert by_status["processing"] + by_status["canceled"] == 20
    assert by_status["queued"] == 0
    for job in jobs:
        assert len(await store.history(job.job_id)) == 2


async def test_terminal_effects_update_counters_atomically(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    calling = await calling_job(lifecycle, "w1")
    # The call ends 250 ms after processing started.
    assert calling.processed_at is not None
    ended = datetime.fromisoformat(calling.processed_at) + timedelta(milliseconds=250)
    lifecycle = lifecycle_of(redis_client, settings, now=lambda: ended)
    answered = CallInfo(outcome=CallOutcome.ANSWERED)

    async def finish() -> bool:
        moved = await lifecycle.finish(
            calling, JobStatus.COMPLETED, answered, worker_id="w1", detail="answered"
        )
        return moved.applied

    assert await finish()
    # The same ending again is refused and changes nothing.
    assert not await finish()
    assert await redis_client.hgetall(store.keys.outcomes) == {"answered": "1"}
    metrics = await redis_client.hgetall(store.keys.metrics)
    assert metrics == {"processed": "1", "succeeded": "1", "processing_ms_total": "250"}
    assert await redis_client.hget(store.keys.worker_stats("w1"), "processed") == "1"


async def test_worker_counters_expire_a_day_after_the_last_heartbeat(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    """The counters' expiry is set when they start and renewed by heartbeats, not by every
    job that ends."""
    keys = Keys(settings.REDIS_PREFIX)
    stats = keys.worker_stats("w1")
    answered = CallInfo(outcome=CallOutcome.ANSWERED)

    async def one_job() -> None:
        lifecycle = lifecycle_of(redis_client, settings)
        calling = await calling_job(lifecycle, "w1")
        moved = await lifecycle.finish(
            calling, JobStatus.COMPLETED, answered, worker_id="w1", detail="answered"
        )
        assert moved.applied

    await one_job()
    assert 86_000 < await redis_client.ttl(stats) <= WORKER_STATS_TTL_S
    await redis_client.expire(stats, 100)
    await one_job()  # counted, without touching the expiry
    assert await redis_client.hget(stats, "processed") == "2"
    assert await redis_client.ttl(stats) <= 100
    await WorkerRegistry(redis_client, keys).beat(WorkerInfo(worker_id="w1"))
    assert 86_000 < await redis_client.ttl(stats) <= WORKER_STATS_TTL_S


async def test_idempotency_key_returns_original_job(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    claim = IdempotencyClaim(key_digest="k1", body_digest="b1")
    first, second = make_job(), make_job()
    assert (await lifecycle.create(first, claim=claim)).created
    again = await lifecycle.create(second, claim=claim)
    assert not again.created
    assert again.job_id == first.job_id
    assert again.original_body_digest == "b1"
    assert await store.get(second.job_id) is None
    total, _ = await store.counts_by_status()
    assert total == 1


async def test_concurrent_idempotent_creates_make_one_job(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    claim = IdempotencyClaim(key_digest="same", body_digest="b")
    results = await asyncio.gather(*(lifecycle.create(make_job(), claim=claim) for _ in range(50)))
    assert sum(r.created for r in results) == 1
    assert len({r.job_id for r in results}) == 1
    assert (await store.counts_by_status())[0] == 1


async def test_discard_forgets_job_and_its_key(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    claim = IdempotencyClaim(key_digest="k2", body_digest="b")
    job = make_job()
    await lifecycle.create(job, claim=claim)
    await lifecycle.discard(job.job_id, claim=claim)
    assert await store.get(job.job_id) is None
    assert (await store.counts_by_status()) == (0, {s.value: 0 for s in JobStatus})
    # The key is free again for a retried submission.
    assert (await lifecycle.create(make_job(), claim=claim)).created


async def test_call_claim_is_granted_once(redis_client: aioredis.Redis, settings: Settings) -> None:
    lifecycle = lifecycle_of(redis_client, settings)
    claims = await asyncio.gather(*(lifecycle.claim_call("job", 1, f"w{i}@1") for i in range(20)))
    assert sum(c.claimed for c in claims) == 1
    winner = next(f"w{i}@1" for i, c in enumerate(claims) if c.claimed)
    assert {c.holder for c in claims if not c.claimed} == {winner}
    assert (await lifecycle.claim_call("job", 2, "w0@1")).claimed
    await lifecycle.release_attempt("job", 2)
    assert (await lifecycle.claim_call("job", 2, "w1@1")).claimed


async def test_deliver_counts_reads_and_starts_in_one_step(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    await lifecycle.create(job)

    async def deliver(
        job_id: str, attempt: int
    ) -> tuple[int, bool, JobStatus | None, JobStatus | None]:
        got = await lifecycle.deliver(
            job_id,
            attempt=attempt,
            tech_retries=0,
            priority=job.priority,
            worker_id="w",
            max_deliveries=2,
        )
        found = got.found.status if got.found else None
        now = got.job.status if got.job else None
        return got.deliveries, got.started, found, now

    queued, processing = JobStatus.QUEUED, JobStatus.PROCESSING
    assert await deliver(job.job_id, 2) == (1, False, queued, queued)  # not its next attempt
    assert await deliver(job.job_id, 1) == (1, True, queued, processing)
    # The count expires with the record, counted from the first delivery.
    counter = Keys(settings.REDIS_PREFIX).deliveries(job.job_id, 1)
    first_ttl = await redis_client.ttl(counter)
    assert 0 < first_ttl <= settings.JOB_TTL_SECONDS
    await redis_client.expire(counter, 100)
    assert await deliver(job.job_id, 1) == (2, False, processing, processing)
    assert 0 < await redis_client.ttl(counter) <= 100
    assert await deliver("nope", 1) == (1, False, None, None)


async def test_list_recent_pages_newest_first(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    created = []
    jobs = []
    for _ in range(5):
        job = make_job()
        await lifecycle.create(job)
        created.append(job.job_id)
        jobs.append(job)
        await asyncio.sleep(0.002)
    page, cursor = await store.list_recent(limit=3)
    assert [j.job_id for j in page] == created[::-1][:3]
    assert cursor is not None
    rest, end = await store.list_recent(limit=3, after=cursor)
    assert [j.job_id for j in rest] == created[::-1][3:]
    assert end is None
    await lifecycle.cancel(jobs[0])
    canceled, _ = await store.list_recent(status=JobStatus.CANCELED)
    assert [j.job_id for j in canceled] == [created[0]]


async def test_pages_never_skip_jobs_created_in_the_same_millisecond(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    ids = []
    for _ in range(7):
        job = make_job()
        await lifecycle.create(job)
        ids.append(job.job_id)
    # Every job created in one millisecond, as happens under load.
    await redis_client.zadd(store.keys.index, dict.fromkeys(ids, 1_800_000_000_000), xx=True)
    seen: list[str] = []
    cursor: PageCursor | None = None
    while True:
        page, cursor = await store.list_recent(limit=3, after=cursor)
        seen += [job.job_id for job in page]
        if cursor is None:
            break
        assert PageCursor.decode(cursor.encode()) == cursor
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(ids)


async def test_status_and_priority_filter_finds_old_matches(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    high = [make_job(priority=Priority.HIGH) for _ in range(3)]
    for job in high:
        await lifecycle.create(job)
        await lifecycle.cancel(job)
    # Many newer canceled normal jobs in front of the high ones.
    for _ in range(250):
        job = make_job()
        await lifecycle.create(job)
        await lifecycle.cancel(job)
    found, cursor = await store.list_recent(
        status=JobStatus.CANCELED, priority=Priority.HIGH, limit=10
    )
    assert sorted(j.job_id for j in found) == sorted(j.job_id for j in high)
    assert cursor is None
    # The combined index follows every transition.
    assert (
        await redis_client.zcard(store.keys.status_priority_index(JobStatus.QUEUED, Priority.HIGH))
        == 0
    )


async def test_a_scheduled_job_keeps_its_record_until_well_after_it_is_due(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job(status=JobStatus.SCHEDULED)
    job.scheduled_for = iso(utcnow() + timedelta(days=30))
    await lifecycle.create(job)
    ttl = await redis_client.ttl(store.keys.job(job.job_id))
    assert ttl > 30 * 24 * 3600 + settings.JOB_TTL_SECONDS - 60
    assert await redis_client.ttl(store.keys.history(job.job_id)) == ttl


async def test_expired_records_leave_every_index(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    old = make_job(priority=Priority.HIGH)
    await lifecycle.create(old)
    await lifecycle.cancel(old)
    # Its record has expired (as Redis would drop it) and so has its expiry time.
    await redis_client.delete(store.keys.job(old.job_id), store.keys.history(old.job_id))
    await redis_client.zadd(store.keys.expiry_index, {old.job_id: 1})
    await redis_client.delete(f"{store.keys.prefix}jobs:prune")
    await lifecycle.create(make_job())
    total, by_status = await store.counts_by_status()
    assert (total, by_status["canceled"], by_status["queued"]) == (1, 0, 1)
    for key in (
        store.keys.index,
        store.keys.priority_index(Priority.HIGH),
        store.keys.status_priority_index(JobStatus.CANCELED, Priority.HIGH),
        store.keys.expiry_index,
    ):
        assert await redis_client.zscore(key, old.job_id) is None


async def test_the_calling_policy_holds_and_suppresses_through_the_lifecycle(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    held, listed = make_job(), make_job(phone="3005050150")
    for job in (held, listed):
        await lifecycle.create(job)
    opening = utcnow().replace(microsecond=0) + timedelta(hours=3)
    # Only a job in processing is held back: a queued one is refused as it is.
    assert not (await lifecycle.hold(held, opening, "outside_calling_window")).applied
    started = (await lifecycle.start(held, "w1")).job
    moved = await lifecycle.hold(started, opening, "outside_calling_window: waits")
    assert (moved.applied, moved.previous, moved.status) == (
        True,
        JobStatus.PROCESSING,
        JobStatus.SCHEDULED,
    )
    again = await store.get(held.job_id)
    assert again is not None
    assert again.status is JobStatus.SCHEDULED
    assert again.scheduled_for == iso(opening)
    history = await store.history(held.job_id)
    assert [h.status for h in history] == ["queued", "processing", "scheduled"]
    assert history[-1].detail == "outside_calling_window: waits"
    # The next opening starts it again from scheduled.
    assert (await lifecycle.start(again, "w2")).applied

    assert not (await lifecycle.suppress(listed, "do_not_call", worker_id="w1")).applied
    running = (await lifecycle.start(listed, "w1")).job
    assert (await lifecycle.suppress(running, "do_not_call", worker_id="w1")).applied
    ended = await store.get(listed.job_id)
    assert ended is not None
    assert ended.status is JobStatus.FAILED
    assert ended.call.outcome is CallOutcome.SUPPRESSED
    assert ended.attempts == 0
    assert ended.error is not None
    assert "do-not-call" in ended.error
    assert await redis_client.hget(store.keys.outcomes, "suppressed") == "1"


async def test_a_campaign_cancel_is_the_lifecycle_cancel(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    published: list[bytes] = []

    async def results(body: bytes, message_id: str) -> None:
        published.append(body)

    lifecycle = lifecycle_of(redis_client, settings, results=results)
    job = make_job()
    await lifecycle.create(job)
    assert (await lifecycle.cancel(job, "campaign canceled")).applied
    assert not (await lifecycle.cancel(job, "campaign canceled")).applied
    canceled = await store.get(job.job_id)
    assert canceled is not None
    assert canceled.status is JobStatus.CANCELED
    assert canceled.call.outcome is CallOutcome.CANCELED
    assert (await store.history(job.job_id))[-1].detail == "campaign canceled"
    assert len(published) == 1
    assert b'"status":"canceled"' in published[0]


async def test_call_claim_refuses_a_listed_number_unless_already_claimed(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    store = store_for(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    await redis_client.zadd(store.keys.dnc, {"+573005050149": 0})
    listed = await lifecycle.claim_call("job", 1, "w@2.5", refuse_listed="+573005050149")
    assert (listed.claimed, listed.holder, listed.listed) == (False, "", True)
    assert not await store.attempt_placed("job", 1)
    unchecked = await lifecycle.claim_call("job", 1, "w@2.5")
    assert unchecked.claimed
    # A call an earlier delivery placed is followed, listed or not.
    again = await lifecycle.claim_call("job", 1, "w@3.5", refuse_listed="+573005050149")
    assert (again.claimed, again.holder, again.listed) == (False, "w@2.5", False)
