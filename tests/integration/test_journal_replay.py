"""What a worker makes again on a new Redis master when the old one took its writes away
(worker/durable.py): its own status changes while the record is where it left it, its call
claim always, and nothing that would take back a record another delivery moved on since."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import make_settings
from tests.factories import lifecycle_of, make_job
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import CallOutcome, Job, JobMessage, JobStatus
from ttsqueue.store import journal
from ttsqueue.store.lifecycle import JobLifecycle
from ttsqueue.worker.context import WorkerContext
from ttsqueue.worker.durable import _still_ours
from ttsqueue.worker.main import build_context

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


async def _dialed_and_completed(lifecycle: JobLifecycle, job: Job, owner: str) -> None:
    started = (await lifecycle.start(job, owner)).job
    assert (await lifecycle.claim_call(job.job_id, 1, owner)).claimed
    calling = await lifecycle.mark_calling(
        started, 1, audio=job.audio, backend="simulator", started_at=time.time(), detail="placed"
    )
    info = calling.call.model_copy(update={"outcome": CallOutcome.ANSWERED})
    moved = await lifecycle.finish(calling, JobStatus.COMPLETED, info, worker_id=owner, detail="ok")
    assert moved.applied


async def _lost_then_replayed_whole(
    ctx: WorkerContext, redis_client: Any, job: Job, writes: list[journal.Entry]
) -> None:
    """The new master holds nothing of `job`: its record is rebuilt from the message, every
    write is made again, and the job ends completed with its call claimed by w1."""
    keys = ctx.store.keys
    await redis_client.delete(keys.job(job.job_id), keys.history(job.job_id))
    await redis_client.delete(keys.attempt(job.job_id, 1))
    message = JobMessage(job_id=job.job_id, attempt=1, record=job.model_dump(mode="json"))
    assert await ctx.lifecycle.rebuild(message) is not None
    again = await _still_ours(ctx, job.job_id, writes)
    assert again == writes
    await journal.replay(again)
    stored = await ctx.store.get(job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.COMPLETED
    assert await redis_client.get(keys.attempt(job.job_id, 1)) == "w1"


async def test_a_lost_record_comes_back_finished_with_its_claim(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    """The whole delivery went to the old master: the record is rebuilt from the message and
    every write is made again, so the job ends completed and its call stays claimed."""
    ctx = await build_context(
        settings, redis_client, Publisher(broker, QueueNames.from_prefix(settings.QUEUE_PREFIX))
    )
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    await lifecycle.create(job)
    with journal.journaling() as writes:
        await _dialed_and_completed(lifecycle, job, "w1")
    assert len(writes) == 4  # processing, claim, calling, completed
    await _lost_then_replayed_whole(ctx, redis_client, job, writes)


async def test_a_record_made_in_the_same_millisecond_as_the_first_change_is_replayed_whole(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    """A job accepted and started within one millisecond: the rebuilt record's `updated_at`
    equals this delivery's first change's, but its status says it never took that change, so
    every write is made again."""
    ctx = await build_context(
        settings, redis_client, Publisher(broker, QueueNames.from_prefix(settings.QUEUE_PREFIX))
    )
    job = make_job()
    moment = datetime.fromisoformat(job.updated_at.replace("Z", "+00:00"))
    lifecycle = lifecycle_of(redis_client, settings, now=lambda: moment)
    await lifecycle.create(job)
    with journal.journaling() as writes:
        await _dialed_and_completed(lifecycle, job, "w1")
    assert {entry.at for entry in writes} == {None, job.updated_at}
    await _lost_then_replayed_whole(ctx, redis_client, job, writes)


async def test_a_record_another_delivery_moved_on_is_not_taken_back(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    """A technical retry (claim released, job requeued) whose writes are made again after
    the next delivery dialed: that delivery's claim and state stay."""
    ctx = await build_context(
        settings, redis_client, Publisher(broker, QueueNames.from_prefix(settings.QUEUE_PREFIX))
    )
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job()
    await lifecycle.create(job)
    with journal.journaling() as writes:
        started = (await lifecycle.start(job, "w1")).job
        assert (await lifecycle.claim_call(job.job_id, 1, "w1@1")).claimed
        await lifecycle.release_attempt(job.job_id, 1)
        assert (await lifecycle.requeue(started, "technical retry")).applied
    await asyncio.sleep(0.01)  # the next delivery's writes are later
    queued = job.model_copy(update={"status": JobStatus.QUEUED})
    started = (await lifecycle.start(queued, "w2")).job
    assert (await lifecycle.claim_call(job.job_id, 1, "w2@2")).claimed
    await lifecycle.mark_calling(
        started, 1, audio=job.audio, backend="simulator", started_at=time.time(), detail="placed"
    )
    again = await _still_ours(ctx, job.job_id, writes)
    assert [entry.at for entry in again] == [None, None]  # the claim and its release only
    await journal.replay(again)
    stored = await ctx.store.get(job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.CALLING
    assert await redis_client.get(ctx.store.keys.attempt(job.job_id, 1)) == "w2@2"
