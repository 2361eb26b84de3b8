"""A worker SIGKILLed while its calls are live on a real Asterisk: another worker follows the
calls to their true end, and Asterisk's own log shows each attempt dialed once (both
backends)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.fake_phones import number
from tests.asterisk.helpers import call_id, publish_many, wait_jobs
from tests.asterisk.instance import PrivateAsterisk
from tests.e2e.test_asterisk_crash import until
from tests.e2e.test_worker_crash import originations, worker_env
from ttsqueue.config import Settings
from ttsqueue.domain import JobStatus
from ttsqueue.store.factory import build_store

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

JOBS = 4
# About 7 s of speech: the calls are still up when the worker that placed them dies.
TEXT = (
    "Aviso de la administración: mañana se suspende el servicio de agua entre las ocho "
    "y las doce del día por mantenimiento de la red."
)


def start_worker(
    settings: Settings, pbx: PrivateAsterisk, backend: str, worker_id: str, log: Path
) -> subprocess.Popen[bytes]:
    env = worker_env(settings, worker_id)
    env.update(WORKER_CONCURRENCY=str(JOBS), CALL_RING_TIMEOUT="5", **pbx.worker_env(backend))
    ttsqueue = Path(sys.executable).with_name("ttsqueue")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(ttsqueue), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(worker: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if worker.poll() is None:
        worker.send_signal(sig)
        worker.wait(30)


@pytest.mark.parametrize("backend", ["ami", "callfile"])
async def test_a_worker_killed_mid_call_dials_nothing_twice(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    shared_asterisk: PrivateAsterisk,
    tmp_path: Path,
    backend: str,
) -> None:
    store = build_store(redis_client, settings).jobs
    ids = await publish_many(
        broker, settings, store, [number("0006")] * JOBS, max_retries=0, text=TEXT
    )
    logs = tmp_path / "w1.log", tmp_path / "w2.log"
    first = start_worker(settings, shared_asterisk, backend, f"{backend}-w1", logs[0])
    second: subprocess.Popen[bytes] | None = None
    try:
        await wait_jobs(store, ids, frozenset({JobStatus.CALLING}), timeout=60)
        # Every call is up in Asterisk (answered, the message playing) when the worker dies.
        await until(lambda: len(shared_asterisk.playing_calls()) == JOBS, timeout=20)
        assert set(originations(logs[0]).values()) == {1}
        # The replacement is up first, as in a pool: what it can only learn from AMI events
        # must not depend on how fast a new process starts on a loaded machine. The first
        # worker holds every message, so the second takes nothing until the kill.
        second = start_worker(settings, shared_asterisk, backend, f"{backend}-w2", logs[1])
        if backend == "ami":
            await until(lambda: len(shared_asterisk.ami_sessions()) >= 2, timeout=30)
        stop(first, signal.SIGKILL)
        jobs = await wait_jobs(store, ids, timeout=90)
    finally:
        stop(first, signal.SIGKILL)
        if second is not None:
            stop(second, signal.SIGTERM)
    for job_id, job in jobs.items():
        # "played": the second worker saw how each call really ended.
        assert (job.status, job.attempts, job.call.outcome, job.call.reason) == (
            JobStatus.COMPLETED,
            1,
            "answered",
            "played",
        ), job.call
        history = [h.status for h in await store.history(job_id)]
        assert history.count(JobStatus.CALLING) == 1
    # Asterisk dialed each attempt once; the second worker placed nothing.
    rings = shared_asterisk.rings()
    assert [rings[call_id(job_id)] for job_id in ids] == [1] * JOBS
    assert originations(logs[1]) == {}
