"""The reaper gives a lost call up through the dialer: a call file Asterisk never started is
taken back from `outgoing/` before the job is failed (so it cannot ring once the job has
ended); one Asterisk is dialing is left to it. Its "job failed" log line names the job.

A worker (`serve`) with the call-file backend on real RabbitMQ and Redis; the spool double is
paused: Asterisk is down while the job's own worker vanished after placing the file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aio_pika.abc import AbstractRobustConnection
from structlog.testing import capture_logs

from tests.conftest import make_settings
from tests.doubles.spool import SpoolDouble, running_spool_double
from tests.factories import lifecycle_for, make_job
from tests.in_process import running_worker
from ttsqueue.config import Settings
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.callfile.dialer import place_call_file
from ttsqueue.dialer.callfile.format import call_file_name, render_call_file
from ttsqueue.dialer.callfile.spool_watcher import SpoolPaths
from ttsqueue.dialer.dial_values import dial_values
from ttsqueue.domain import AudioInfo, Job, JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    spool = tmp_path / "spool"
    (spool / "outgoing").mkdir(parents=True)
    return make_settings(tmp_path, DIALER="callfile", ASTERISK_SPOOL_DIR=spool, CALL_MAX_DURATION=1)


@pytest.fixture
async def double(settings: Settings) -> AsyncIterator[SpoolDouble]:
    async with running_spool_double(settings.ASTERISK_SPOOL_DIR, paused=True) as spool:
        yield spool


async def stuck_in_calling(store: JobStore, settings: Settings, *, started: bool) -> Job:
    """A job whose worker placed attempt 1's call file, moved it to `calling`, and died."""
    job = make_job()
    lifecycle = lifecycle_for(store)
    await lifecycle.create(job)
    processing = (await lifecycle.start(job, "gone-worker")).job
    await lifecycle.mark_calling(  # attempt 1's call placed, then its worker vanished
        processing, 1, audio=AudioInfo(), backend="simulator", started_at=time.time(), detail="x"
    )
    call = CallRequest(
        job_id=job.job_id,
        attempt=1,
        number=job.dial_number,
        e164=job.e164,
        caller_id=None,
        audio_path=str(settings.AUDIO_DIR / "x"),
        audio_duration_s=1.0,
        ring_timeout_s=settings.CALL_RING_TIMEOUT,
        originated_at=time.time(),
    )
    content = render_call_file(dial_values(settings, call))
    if started:
        content += "\nStartRetry: 4242 1 (1795588714)\n"  # Asterisk is dialing it
    paths = SpoolPaths.under(settings.ASTERISK_SPOOL_DIR)
    paths.staging.mkdir(exist_ok=True)
    assert place_call_file(paths, call_file_name(call), content)
    return job


async def reaped(store: JobStore, job_id: str, timeout: float = 20.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = await store.get(job_id)
        if job is not None and job.status is JobStatus.FAILED:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} was not reaped")


def store_of(redis_client: Any, settings: Settings) -> JobStore:
    return build_store(redis_client, settings).jobs


async def test_an_unstarted_call_file_is_taken_back_before_the_job_fails(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    double: SpoolDouble,
) -> None:
    store = store_of(redis_client, settings)
    job = await stuck_in_calling(store, settings, started=False)
    name = f"{job.job_id}-1.call"
    await asyncio.sleep(1.1)  # past CALL_MAX_DURATION
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with running_worker(settings):
            failed = await reaped(store, job.job_id)
    assert failed.call.reason == "lost_track"
    assert not (double.outgoing / name).exists()
    assert (settings.ASTERISK_SPOOL_DIR / "tts-staging" / f"{name}.withdrawn").exists()
    double.paused = False  # Asterisk comes back: nothing of this job is left to dial
    await asyncio.sleep(0.3)
    assert name not in double.handovers
    withdrawn = [e for e in logs if e["event"] == "call withdrawn before the backend started it"]
    assert [e.get("job_id") for e in withdrawn] == [job.job_id]
    (line,) = [e for e in logs if e["event"] == "job failed"]
    assert (line.get("job_id"), line.get("attempt"), line["reason"]) == (
        job.job_id,
        1,
        "lost_track",
    )


async def test_a_call_file_asterisk_is_dialing_is_left_to_it(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    double: SpoolDouble,
) -> None:
    store = store_of(redis_client, settings)
    job = await stuck_in_calling(store, settings, started=True)
    name = f"{job.job_id}-1.call"
    await asyncio.sleep(1.1)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with running_worker(settings):
            failed = await reaped(store, job.job_id)
    assert failed.call.reason == "lost_track"
    assert (double.outgoing / name).exists()
    assert not any(e["event"].startswith("call withdrawn") for e in logs)
    assert [e.get("job_id") for e in logs if e["event"] == "job failed"] == [job.job_id]
