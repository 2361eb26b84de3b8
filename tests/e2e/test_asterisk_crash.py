"""A worker killed with SIGKILL while its real calls are live: the redelivered messages are
followed to the calls' true outcomes by another worker process, and no attempt is dialed twice
(both backends)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.doubles.ami_server import running_ami_double
from tests.doubles.spool import running_spool_double
from tests.e2e.test_worker_crash import originations, wait_statuses, worker_env
from tests.factories import lifecycle_for, make_job
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage, JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

JOBS = 4


def start_worker(
    settings: Settings, worker_id: str, log: Path, dialer: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = worker_env(settings, worker_id)
    env.update(WORKER_CONCURRENCY=str(JOBS), CALL_RING_TIMEOUT="5", **dialer)
    ttsqueue = Path(sys.executable).with_name("ttsqueue")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(ttsqueue), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def queue_jobs(
    settings: Settings, broker: AbstractRobustConnection, store: JobStore
) -> list[str]:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    ids = []
    for _ in range(JOBS):
        job = make_job(text="Alerta: corte de agua mañana de 8 a 12.", max_retries=0)
        await lifecycle_for(store).create(job)
        await publisher.to_work_queue(
            names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id
        )
        ids.append(job.job_id)
    return ids


async def until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def stop(worker: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if worker.poll() is None:
        worker.send_signal(sig)
        worker.wait(30)


async def assert_completed_once(store: JobStore, ids: list[str]) -> None:
    for job_id in ids:
        job = await store.get(job_id)
        assert job is not None
        # "played": the end of each call was seen, not guessed after a deadline.
        assert (job.status, job.attempts, job.call.outcome, job.call.reason) == (
            JobStatus.COMPLETED,
            1,
            "answered",
            "played",
        )
        history = [h.status for h in await store.history(job_id)]
        assert history.count(JobStatus.CALLING) == 1


async def test_ami_calls_survive_the_worker_that_placed_them(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any, tmp_path: Path
) -> None:
    store = build_store(redis_client, settings).jobs
    # Calls of about 8 s: still live when the worker that placed them dies.
    async with running_ami_double(time_scale=2.0) as double:
        dialer = {
            "DIALER": "ami",
            "ASTERISK_AMI_HOST": "127.0.0.1",
            "ASTERISK_AMI_PORT": str(double.port),
            "ASTERISK_AMI_USER": "tts",
            "ASTERISK_AMI_SECRET": "tts_secret",
        }
        logs = tmp_path / "w1.log", tmp_path / "w2.log"
        first = start_worker(settings, "ami-w1", logs[0], dialer)
        second = start_worker(settings, "ami-w2", logs[1], dialer)
        try:
            await until(lambda: len(double.logins) >= 2, timeout=30)
            ids = await queue_jobs(settings, broker, store)
            await wait_statuses(store, ids, {JobStatus.CALLING}, timeout=60)
            assert double.live == JOBS
            # Which worker's consumer RabbitMQ fed first is its choice: the one that placed
            # calls is killed, and the other follows them to the end.
            if not originations(logs[0]):
                first, second, logs = second, first, (logs[1], logs[0])
            assert originations(logs[0]), "neither worker placed a call"
            stop(first, signal.SIGKILL)
            await wait_statuses(store, ids, {JobStatus.COMPLETED}, timeout=60)
        finally:
            stop(first, signal.SIGKILL)
            stop(second, signal.SIGTERM)
    ids_dialed = [o.get("ChannelId") for o in double.originates]
    assert sorted(ids_dialed) == sorted(i.replace("-", "") + "01" for i in ids)
    assert set(originations(*logs).values()) == {1}
    await assert_completed_once(store, ids)


async def test_call_files_survive_the_worker_that_placed_them(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any, tmp_path: Path
) -> None:
    store = build_store(redis_client, settings).jobs
    async with running_spool_double(tmp_path / "spool", time_scale=1.0) as double:
        dialer = {"DIALER": "callfile", "ASTERISK_SPOOL_DIR": str(double.spool)}
        ids = await queue_jobs(settings, broker, store)
        logs = tmp_path / "w1.log", tmp_path / "w2.log"
        first = start_worker(settings, "cf-w1", logs[0], dialer)
        try:
            await wait_statuses(store, ids, {JobStatus.CALLING}, timeout=60)
            await until(lambda: double.live == JOBS, timeout=10)
        finally:
            stop(first, signal.SIGKILL)
        second = start_worker(settings, "cf-w2", logs[1], dialer)
        try:
            await wait_statuses(store, ids, {JobStatus.COMPLETED}, timeout=60)
        finally:
            stop(second, signal.SIGTERM)
    assert sorted(double.handovers) == sorted(f"{i}-1.call" for i in ids)
    assert set(double.handovers.values()) == {1}
    assert set(originations(*logs).values()) == {1}
    assert os.listdir(double.spool / "tts-staging") == []
    await assert_completed_once(store, ids)
