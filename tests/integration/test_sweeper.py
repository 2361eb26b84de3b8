"""Accepted means durable, also across a crash: idempotency keys wait for the confirm, the
workers' sweeper fails (never dials) a job whose submission was never acknowledged and gives
stuck jobs their message back, and a quorum queue's delivery limit does not swallow a job the
worker itself requeued."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import make_settings, wipe_prefix
from tests.factories import lifecycle_of, make_job
from tests.in_process import running_worker, terminal, wait_for
from ttsqueue.api import submission
from ttsqueue.broker import job_messages
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import Job, JobMessage, JobStatus, iso, utcnow
from ttsqueue.errors import BrokerUnavailableError, StoreUnavailableError
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.lifecycle import JobLifecycle
from ttsqueue.worker.main import build_context
from ttsqueue.worker.pipeline import JobHandler
from ttsqueue.worker.plan import Plan, plan_for
from ttsqueue.worker.sweeper import MAX_RESENDS, NEVER_CONFIRMED, sweep_once

pytestmark = pytest.mark.timeout(90)

BODY = {"text": "Su código es 4 8 1 5", "phone_number": "3005050149"}
OLD = "2020-01-01T00:00:00.000Z"


def in_the_past(redis_client: Any, settings: Settings) -> JobLifecycle:
    """A lifecycle whose clock reads OLD: what it touches looks long untouched."""
    return lifecycle_of(redis_client, settings, now=lambda: datetime.fromisoformat(OLD))


class Crash(BaseException):
    """The API process dying between the job record and the publish."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, SIMULATOR_TIME_SCALE=0.01, SWEEP_AFTER_SECONDS=2)


def store_of(redis_client: Any, settings: Settings) -> JobStore:
    return build_store(redis_client, settings).jobs


async def test_a_crash_before_the_publish_is_failed_not_dialed_and_the_key_freed(
    api: httpx.AsyncClient,
    settings: Settings,
    redis_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def crash(*args: Any) -> None:
        raise Crash

    headers = {"Idempotency-Key": "otp-crash-1"}
    with monkeypatch.context() as patch:
        patch.setattr(submission, "send_first_message", crash)
        with pytest.raises(Crash):
            await api.post("/tts/call", json=BODY, headers=headers)
    store = store_of(redis_client, settings)
    jobs, _ = await store.list_recent()
    assert [job.status for job in jobs] == [JobStatus.QUEUED]
    job_id = jobs[0].job_id
    # The key does not lead to a job that has no message yet.
    monkeypatch.setattr(submission, "PENDING_WAIT_S", 0.3)
    repeat = await api.post("/tts/call", json=BODY, headers=headers)
    assert repeat.status_code == 409
    assert repeat.json()["code"] == "idempotency_in_progress"
    # Nobody was told the job was accepted and no message exists: the workers' sweeper fails
    # it, never dialed, and frees its key; the client's retry gets a job of its own, which runs.
    async with running_worker(settings):
        body = await wait_for(api, job_id, terminal, timeout=40)
        await never_dialed(redis_client, settings, body, job_id)
        again = await api.post("/tts/call", json=BODY, headers=headers)
        assert again.status_code == 202, again.text
        assert again.json()["job_id"] != job_id
        done = await wait_for(api, again.json()["job_id"], terminal, timeout=40)
    assert done["status"] == "completed"


async def never_dialed(
    redis_client: Any, settings: Settings, body: dict[str, Any], job_id: str
) -> None:
    """`body` (the job's status) says failed as never confirmed, and no attempt was claimed."""
    assert (body["status"], body["attempts"]) == ("failed", 0), body
    assert body["error"] == NEVER_CONFIRMED
    keys = build_store(redis_client, settings).keys
    assert await redis_client.exists(keys.attempt(job_id, 1)) == 0
    # Left unconfirmed just after the failure is written (the key is freed with it).
    deadline = time.monotonic() + 10
    while await redis_client.zscore(keys.unconfirmed, job_id) is not None:
        assert time.monotonic() < deadline, "still unconfirmed"
        await asyncio.sleep(0.05)


async def test_a_record_whose_creation_reply_was_lost_is_never_dialed(
    api: httpx.AsyncClient,
    settings: Settings,
    redis_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Redis restart can lose the reply to the record's creation, not the record: the client
    gets 503 and nothing is published. That job must never be dialed (it once was, by the
    sweeper sending its "missing" first message: one call more than the jobs accepted)."""
    real_create = JobLifecycle.create
    created: list[str] = []

    async def reply_lost(self: JobLifecycle, job: Job, **options: Any) -> Any:
        await real_create(self, job, **options)
        created.append(job.job_id)
        raise StoreUnavailableError("connection lost while reading the reply")

    headers = {"Idempotency-Key": "otp-lost-reply-1"}
    with monkeypatch.context() as patch:
        patch.setattr(JobLifecycle, "create", reply_lost)
        refused = await api.post("/tts/call", json=BODY, headers=headers)
    assert refused.status_code == 503, refused.text
    (job_id,) = created
    async with running_worker(settings):
        body = await wait_for(api, job_id, terminal, timeout=40)
    await never_dialed(redis_client, settings, body, job_id)


async def test_a_failed_publish_leaves_no_key_behind(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*args: Any) -> None:
        raise BrokerUnavailableError("no confirm")

    headers = {"Idempotency-Key": "otp-refused-1"}
    with monkeypatch.context() as patch:
        patch.setattr(submission, "send_first_message", refuse)
        refused = await api.post("/tts/call", json=BODY, headers=headers)
    assert refused.status_code == 503
    retried = await api.post("/tts/call", json=BODY, headers=headers)
    assert retried.status_code == 202


async def test_a_repeat_during_the_publish_waits_for_the_same_job(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = job_messages.send_first_message

    async def slow(*args: Any) -> None:
        await asyncio.sleep(0.5)
        await real(*args)

    headers = {"Idempotency-Key": "otp-slow-1"}
    monkeypatch.setattr(submission, "send_first_message", slow)
    first, second = await asyncio.gather(
        api.post("/tts/call", json=BODY, headers=headers),
        api.post("/tts/call", json=BODY, headers=headers),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 202]
    assert first.json()["job_id"] == second.json()["job_id"]


async def test_a_batch_with_a_key_returns_the_same_jobs_and_never_a_bare_503(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [{**BODY, "text": f"Mensaje {n}"} for n in range(4)]
    headers = {"Idempotency-Key": "batch-1"}
    first = await api.post("/tts/calls", json={"calls": items}, headers=headers)
    assert first.status_code == 202
    again = await api.post("/tts/calls", json={"calls": items}, headers=headers)
    assert again.status_code == 202
    ids = [r["job_id"] for r in first.json()["results"]]
    assert [r["job_id"] for r in again.json()["results"]] == ids
    assert all(r["existing"] for r in again.json()["results"])
    # RabbitMQ fails halfway through another batch: per-item results, never a bare 503.
    real = job_messages.send_first_message
    calls = 0

    async def flaky(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls % 2 == 0:
            raise BrokerUnavailableError("connection lost")
        await real(*args)

    monkeypatch.setattr(submission, "send_first_message", flaky)
    mixed = await api.post("/tts/calls", json={"calls": items})
    assert mixed.status_code == 202
    codes = [r.get("code") for r in mixed.json()["results"]]
    assert codes.count("service_unavailable") == 2
    assert mixed.json()["accepted"] == 2


async def _sweep(settings: Settings, broker: AbstractRobustConnection, redis: Any) -> Any:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    ctx = await build_context(settings, redis, Publisher(broker, names))
    inspector = QueueInspector(broker, names)
    try:
        await redis.delete(ctx.store.keys.sweeper_lock)
        return await sweep_once(ctx, inspector)
    finally:
        await inspector.close()


async def test_a_processing_job_without_owner_or_message_is_resent_then_failed(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    store = store_of(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    await lifecycle.create(job)
    await lifecycle.confirm(job.job_id)
    assert (await lifecycle.start(job, "gone-worker")).applied
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    channel = await broker.channel()
    queue = await channel.get_queue(names.calls)
    await asyncio.sleep(settings.SWEEP_AFTER_SECONDS + 0.5)  # older than the grace
    for resend in range(1, MAX_RESENDS + 1):
        await in_the_past(redis_client, settings).touch(job.job_id)
        report = await _sweep(settings, broker, redis_client)
        assert (report.resent, report.failed) == (1, 0)
        message = await queue.get(no_ack=True, timeout=5)
        assert JobMessage.decode(message.body).attempt == 1, resend
        # Not again before another grace period.
        assert (await _sweep(settings, broker, redis_client)).resent == 0
    await in_the_past(redis_client, settings).touch(job.job_id)
    report = await _sweep(settings, broker, redis_client)
    assert report.failed == 1
    failed = await store.get(job.job_id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert "no message and no worker" in (failed.error or "")
    await channel.close()


async def test_a_calling_job_without_owner_gets_the_dialed_attempt_back_never_a_new_one(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    """Its ending was lost (a demoted Redis master): the resent message names the attempt
    that was dialed, so its delivery follows that call (plan RESUME) and never dials."""
    store = store_of(redis_client, settings)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    await lifecycle.create(job)
    await lifecycle.confirm(job.job_id)
    assert (await lifecycle.start(job, "gone-worker")).applied
    assert (await lifecycle.claim_call(job.job_id, 1, "gone-worker@0")).claimed
    calling = await lifecycle.mark_calling(
        job.model_copy(update={"status": JobStatus.PROCESSING}),
        1,
        audio=job.audio,
        backend="simulator",
        started_at=time.time(),
        detail="call placed",
    )
    assert calling.status is JobStatus.CALLING
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    channel = await broker.channel()
    queue = await channel.get_queue(names.calls)
    await asyncio.sleep(settings.SWEEP_AFTER_SECONDS + 0.5)
    await in_the_past(redis_client, settings).touch(job.job_id)
    report = await _sweep(settings, broker, redis_client)
    assert (report.resent, report.failed) == (1, 0)
    message = JobMessage.decode((await queue.get(no_ack=True, timeout=5)).body)
    assert message.attempt == 1
    stored = await store.get(job.job_id)
    assert stored is not None
    assert plan_for(stored, message.attempt) is Plan.RESUME
    await channel.close()


async def test_jobs_with_a_backlog_or_a_live_owner_are_left_alone(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    lifecycle = lifecycle_of(redis_client, settings)
    waiting = make_job()
    await lifecycle.create(waiting)
    await lifecycle.confirm(waiting.job_id)
    await in_the_past(redis_client, settings).touch(waiting.job_id)
    await Publisher(broker, names).to_work_queue(
        names.calls, JobMessage(job_id=waiting.job_id).encode(), waiting.job_id
    )
    await asyncio.sleep(settings.SWEEP_AFTER_SECONDS + 0.5)
    report = await _sweep(settings, broker, redis_client)
    assert (report.confirmed, report.resent, report.failed) == (0, 0, 0)


async def test_an_unconfirmed_job_whose_message_may_come_is_left_for_later(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    """Not due yet (its message may wait in a delay queue), or its work queue still holds
    messages: no verdict yet. Once a worker started it, it had its message: confirmed."""
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    lifecycle = lifecycle_of(redis_client, settings)
    later = iso(utcnow() + timedelta(hours=1))
    scheduled = make_job(status=JobStatus.SCHEDULED, scheduled_for=later)
    waiting, started = make_job(), make_job()
    for job in (scheduled, waiting, started):
        await lifecycle.create(job)
    assert (await lifecycle.start(started, "a-worker")).applied
    other = make_job().job_id  # another job's message, still ahead in the queue
    await Publisher(broker, names).to_work_queue(
        names.calls, JobMessage(job_id=other).encode(), other
    )
    await asyncio.sleep(settings.SWEEP_AFTER_SECONDS + 0.5)
    report = await _sweep(settings, broker, redis_client)
    assert (report.confirmed, report.refused) == (0, 0)
    store = store_of(redis_client, settings)
    unconfirmed = await store.unconfirmed_before(int(time.time() * 1000))
    assert sorted(unconfirmed) == sorted([scheduled.job_id, waiting.job_id])
    statuses = [job.status for job in await store.get_many(unconfirmed)]
    assert set(statuses) == {JobStatus.SCHEDULED, JobStatus.QUEUED}
    # The queue drained: the queued one is failed now; the scheduled one still waits.
    channel = await broker.channel()
    await (await channel.get_queue(names.calls)).purge()
    await channel.close()
    report = await _sweep(settings, broker, redis_client)
    assert report.refused == 1
    failed = await store.get(waiting.job_id)
    assert failed is not None
    assert (failed.status, failed.error) == (JobStatus.FAILED, NEVER_CONFIRMED)
    assert await store.unconfirmed_before(int(time.time() * 1000)) == [scheduled.job_id]


async def test_a_quorum_queue_does_not_dead_letter_what_the_worker_requeued(
    tmp_path: Path, redis_client: Any
) -> None:
    """Deliveries the worker hands back (here: Redis unreachable) would hit x-delivery-limit
    and vanish into tts_dead while the job stays queued; they go back as fresh copies."""
    settings = make_settings(tmp_path, RABBITMQ_QUEUE_TYPE="quorum", MAX_DELIVERIES=2)
    connection = await aio_pika.connect_robust(settings.RABBITMQ_URL)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    from ttsqueue.broker.topology import declare_topology

    try:
        await declare_topology(await connection.channel(), settings)
        job = make_job()
        await lifecycle_of(redis_client, settings).create(job)
        publisher = Publisher(connection, names)
        await publisher.to_work_queue(
            names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id
        )
        # A worker whose Redis is down: every delivery is requeued.
        down = make_settings(tmp_path, REDIS_URL="redis://127.0.0.1:1/0", **_same(settings))
        from ttsqueue.store.connection import connect_redis

        dead_redis = connect_redis(down.REDIS_URL, client_name="down")
        handler = JobHandler(await build_context(down, dead_redis, publisher))
        channel = await connection.channel()
        work = await channel.get_queue(names.calls)
        for _ in range(6):
            message = await _get(work)
            await handler.handle(message, job.priority)
        await dead_redis.aclose()
        dead_queue = await channel.get_queue(names.dead)
        assert await dead_queue.get(no_ack=True, fail=False) is None
        message = await _get(work)
        assert JobMessage.decode(message.body).job_id == job.job_id
        await message.nack(requeue=True)
    finally:
        channel = await connection.channel()
        for queue in names.queues():
            await channel.queue_delete(queue)
        for exchange in names.exchanges():
            await channel.exchange_delete(exchange)
        await connection.close()
        await wipe_prefix(redis_client, settings.REDIS_PREFIX)  # its own prefix, not the fixture's


def _same(settings: Settings) -> dict[str, object]:
    return {
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "QUEUE_PREFIX": settings.QUEUE_PREFIX,
        "RABBITMQ_QUEUE_TYPE": "quorum",
        "MAX_DELIVERIES": settings.MAX_DELIVERIES,
    }


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = await queue.get(no_ack=False, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("no message in the work queue")
