"""Asterisk restarted, and Asterisk stopped for good, while a worker has calls up and more to
place: no job lost or stuck, every one ends with a clear outcome, and `/health` tells."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.fake_phones import number
from tests.asterisk.helpers import call_id, publish_many, wait_jobs
from tests.asterisk.instance import PrivateAsterisk
from tests.e2e.test_asterisk_crash import until
from tests.in_process import running_worker
from ttsqueue.config import Settings
from ttsqueue.domain import Job, JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore

pytestmark = [pytest.mark.timeout(150), pytest.mark.parametrize("backend", ["ami", "callfile"])]
# About 7 s of speech: still playing when Asterisk goes away.
LONG = (
    "Aviso de la administración: mañana se suspende el servicio de agua entre las ocho "
    "y las doce del día por mantenimiento de la red."
)


@pytest.fixture
def settings(settings: Settings, asterisk: PrivateAsterisk, backend: str) -> Settings:
    return settings.model_copy(
        update=asterisk.settings_for(
            backend,
            CALL_RING_TIMEOUT=5,
            WORKER_CONCURRENCY=8,
            CALLS_PER_SECOND=50.0,
            TECH_RETRY_BASE_SECONDS=1.0,
            TECH_MAX_RETRIES=3,
            # Call files Asterisk never starts are taken back 5 s before this.
            CALL_MAX_DURATION=40,
        )
    )


async def asterisk_health(api: httpx.AsyncClient) -> str:
    body = (await api.get("/health")).json()
    state: str = body["connections"]["asterisk"]
    return state


async def health_becomes(api: httpx.AsyncClient, wanted: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while (state := await asterisk_health(api)) != wanted:
        if time.monotonic() > deadline:
            raise AssertionError(f"/health says asterisk={state}, not {wanted}, after {timeout}s")
        await asyncio.sleep(0.2)


async def calls_up(
    settings: Settings,
    broker: AbstractRobustConnection,
    store: JobStore,
    pbx: PrivateAsterisk,
    count: int,
) -> list[str]:
    """`count` calls answered and playing a long message."""
    ids = await publish_many(broker, settings, store, [number("0006")] * count, text=LONG)
    await wait_jobs(store, ids, frozenset({JobStatus.CALLING}))
    await until(lambda: len(pbx.playing_calls()) == count, timeout=30)
    return ids


PLAYED = ("completed", "answered", "played")


def cut_short(job: Job) -> bool:
    """Answered, and the message cut when Asterisk went away: the end seen (the Hangup /
    the `h` line arrived before Asterisk stopped, as in every run so far) or settled once
    the message must be over."""
    return (job.status, job.call.outcome) == ("completed", "answered") and job.call.reason in {
        "hangup_during_playback",
        "hangup_not_seen",
    }


async def test_asterisk_restarted_mid_run(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    asterisk: PrivateAsterisk,
) -> None:
    store = build_store(redis_client, settings).jobs
    async with running_worker(settings):
        await health_becomes(api, "connected")
        live = await calls_up(settings, broker, store, asterisk, 2)
        await asyncio.to_thread(asterisk.stop)
        # Placed while Asterisk is down: AMI retries them, call files wait in the spool.
        later = await publish_many(broker, settings, store, [number("0006")] * 2, max_retries=0)
        await health_becomes(api, "disconnected")
        await asyncio.to_thread(asterisk.start)
        await health_becomes(api, "connected")
        jobs = await wait_jobs(store, live + later, timeout=90)
    for job_id in live:
        assert cut_short(jobs[job_id]), jobs[job_id].call
    for job_id in later:
        job = jobs[job_id]
        assert (job.status, job.call.outcome, job.call.reason) == PLAYED
    rings = asterisk.rings()
    assert [rings[call_id(j)] for j in live + later] == [1] * 4


async def test_asterisk_stopped_mid_run(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    asterisk: PrivateAsterisk,
    backend: str,
) -> None:
    store = build_store(redis_client, settings).jobs
    # Give up soon: one technical retry (AMI), call files taken back 7 s after placing.
    settings = settings.model_copy(
        update={"TECH_MAX_RETRIES": 1, "TECH_RETRY_BASE_SECONDS": 0.5, "CALL_MAX_DURATION": 12}
    )
    async with running_worker(settings):
        await health_becomes(api, "connected")
        live = await calls_up(settings, broker, store, asterisk, 1)
        await asyncio.to_thread(asterisk.stop)
        later = await publish_many(broker, settings, store, [number("0006")] * 2, max_retries=0)
        await health_becomes(api, "disconnected")
        jobs = await wait_jobs(store, live + later, timeout=90)
        await asyncio.sleep(2.5)  # a presence beat after the last job ended
        assert await asterisk_health(api) == "disconnected"
    assert cut_short(jobs[live[0]]), jobs[live[0]].call
    for job_id in later:
        job = jobs[job_id]
        assert (job.status, job.call.outcome) == ("failed", "failed")
        if backend == "ami":
            assert job.call.reason, job.call
            assert job.call.reason.startswith("technical error, retries exhausted: no AMI session")
        else:
            # Taken back from outgoing/ before CALL_MAX_DURATION: never rung, even if
            # Asterisk comes back later.
            assert job.call.reason == "not_dialed"
    assert list((asterisk.spool / "outgoing").iterdir()) == []
    assert asterisk.rings()[call_id(later[0])] == 0
