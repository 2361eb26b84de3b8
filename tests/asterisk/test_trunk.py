"""Trunk protection against a real Asterisk: never more live calls than MAX_CONCURRENT_CALLS,
counted by Asterisk itself; and one worker's single AMI session carrying 200 calls."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.fake_phones import number
from tests.asterisk.helpers import LiveCallSampler, call_id, publish_many, wait_jobs
from tests.asterisk.instance import PrivateAsterisk
from tests.in_process import running_worker
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store

pytestmark = pytest.mark.timeout(180)

LIMIT = 3


@pytest.mark.parametrize("backend", ["ami", "callfile"])
async def test_live_calls_never_exceed_the_trunk_limit(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    shared_asterisk: PrivateAsterisk,
    backend: str,
) -> None:
    settings = settings.model_copy(
        update=shared_asterisk.settings_for(
            backend,
            MAX_CONCURRENT_CALLS=LIMIT,
            CALLS_PER_SECOND=50.0,
            WORKER_CONCURRENCY=10,
            CALL_RING_TIMEOUT=5,
        )
    )
    store = build_store(redis_client, settings).jobs
    ids = await publish_many(
        broker, settings, store, [number("0006")] * 10, max_retries=0, text="Hola, buenos días."
    )
    with LiveCallSampler(shared_asterisk) as sampler:
        async with running_worker(settings):
            jobs = await wait_jobs(store, ids, timeout=120)
    assert {(j.status, j.call.outcome, j.call.reason) for j in jobs.values()} == {
        ("completed", "answered", "played")
    }
    # Never above the limit, and the limit was used: the trunk was kept busy.
    assert sampler.peak == LIMIT, collections.Counter(sampler.samples)
    assert shared_asterisk.live_calls() == []


async def test_200_calls_through_one_ami_session(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    shared_asterisk: PrivateAsterisk,
) -> None:
    settings = settings.model_copy(
        update=shared_asterisk.ami_settings(
            MAX_CONCURRENT_CALLS=40,
            CALLS_PER_SECOND=100.0,
            WORKER_CONCURRENCY=60,
            CALL_RING_TIMEOUT=5,
        )
    )
    store = build_store(redis_client, settings).jobs
    # Mostly answered, with busy and congested callees among them: every result must reach
    # the job it belongs to.
    phones = [number({0: "0001", 1: "0003"}.get(i % 10, "0006")) for i in range(200)]
    ids = await publish_many(broker, settings, store, phones, max_retries=0, text="Hola.")
    sessions: list[int] = []
    async with running_worker(settings):
        waiting = asyncio.create_task(wait_jobs(store, ids, timeout=150))
        while not waiting.done():
            sessions.append(len(await asyncio.to_thread(shared_asterisk.ami_sessions)))
            await asyncio.sleep(0.5)
        jobs = await waiting
    expected = {"0001": ("failed", "busy"), "0003": ("failed", "congestion")}
    for job_id, phone in zip(ids, phones, strict=True):
        job = jobs[job_id]
        assert (job.status, job.call.outcome) == expected.get(
            phone[-4:], ("completed", "answered")
        ), (phone, job.status, job.call)
    # From the worker's login to the end: one session, never a second one.
    assert 1 in sessions, sessions
    assert set(sessions[sessions.index(1) :]) == {1}, sessions
    rings = shared_asterisk.rings()
    assert [rings[call_id(job_id)] for job_id in ids] == [1] * 200
