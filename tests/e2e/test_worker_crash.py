"""A worker killed with SIGKILL mid-call: nothing is lost and no attempt is dialed twice."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.factories import lifecycle_for, make_job
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage, JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

JOBS = 6


def worker_env(settings: Settings, worker_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RABBITMQ_URL=settings.RABBITMQ_URL,
        REDIS_URL=settings.REDIS_URL,
        REDIS_PREFIX=settings.REDIS_PREFIX,
        QUEUE_PREFIX=settings.QUEUE_PREFIX,
        AUDIO_DIR=str(settings.AUDIO_DIR),
        TTS_ENGINE="espeak",
        TTS_FALLBACK_ENGINE="",
        DIALER="simulator",
        SIMULATOR_TIME_SCALE="1",
        WORKER_CONCURRENCY=str(JOBS),
        WORKER_ID=worker_id,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    return env


def start_worker(settings: Settings, worker_id: str, log: Path) -> subprocess.Popen[bytes]:
    ttsqueue = Path(sys.executable).with_name("ttsqueue")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(ttsqueue), "worker"],
            env=worker_env(settings, worker_id),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def statuses(store: JobStore, ids: list[str]) -> list[JobStatus | None]:
    return [await store.get_status(job_id) for job_id in ids]


async def wait_statuses(
    store: JobStore, ids: list[str], wanted: set[JobStatus], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s in wanted for s in await statuses(store, ids)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"statuses now: {await statuses(store, ids)}")


def originations(*logs: Path, event: str = "originating call") -> collections.Counter[str]:
    """Lines of `event` per call id: the worker's `originating call` by default, or the
    simulator's own `simulated call placed` record."""
    counts: collections.Counter[str] = collections.Counter()
    for log in logs:
        for line in log.read_bytes().splitlines():
            if event.encode() in line:
                entry = orjson.loads(line)
                if entry.get("event") == event:
                    counts[entry["call_id"]] += 1
    return counts


async def test_sigkill_mid_call_loses_nothing_and_never_redials(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any, tmp_path: Path
) -> None:
    store = build_store(redis_client, settings).jobs
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    ids = []
    for _ in range(JOBS):
        job = make_job(text="Mensaje de emergencia: evacúe el edificio por la salida norte.")
        await lifecycle_for(store).create(job)
        await publisher.to_work_queue(
            names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id
        )
        ids.append(job.job_id)

    first_log, second_log = tmp_path / "w1.log", tmp_path / "w2.log"
    first = start_worker(settings, "crash-w1", first_log)
    try:
        await wait_statuses(store, ids, {JobStatus.CALLING}, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    second = start_worker(settings, "crash-w2", second_log)
    try:
        await wait_statuses(store, ids, {JobStatus.COMPLETED}, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)

    dialed = originations(first_log, second_log)
    assert len(dialed) == JOBS
    assert set(dialed.values()) == {1}, dialed
    # Killed only once every call was placed: the dialer's record matches the worker's.
    assert originations(first_log, second_log, event="simulated call placed") == dialed
    for job_id in ids:
        history = await store.history(job_id)
        assert [h.status for h in history].count(JobStatus.CALLING) == 1
        done = await store.get(job_id)
        assert done is not None
        assert done.attempts == 1
        assert done.call.outcome == "answered"


async def test_sigterm_finishes_in_flight_calls_and_deregisters(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any, tmp_path: Path
) -> None:
    store = build_store(redis_client, settings).jobs
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    ids = []
    for _ in range(3):
        job = make_job(text="Recordatorio de su cita.")
        await lifecycle_for(store).create(job)
        await publisher.to_work_queue(
            names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id
        )
        ids.append(job.job_id)
    worker = start_worker(settings, "graceful-w1", tmp_path / "w.log")
    try:
        await wait_statuses(store, ids, {JobStatus.CALLING}, timeout=60)
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 40) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert set(await statuses(store, ids)) == {JobStatus.COMPLETED}
    registry_key = f"{settings.REDIS_PREFIX}worker:graceful-w1"
    assert not await redis_client.exists(registry_key)
