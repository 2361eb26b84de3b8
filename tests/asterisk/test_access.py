"""What a worker does when it cannot reach Asterisk's door: a wrong AMI secret, a spool it
cannot write. Nothing is dialed, `/health` says why, no job is lost."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from structlog.testing import capture_logs

from tests.asterisk.fake_phones import number
from tests.asterisk.helpers import call_id, publish_many, wait_jobs
from tests.asterisk.instance import PrivateAsterisk
from tests.asterisk.test_restart import health_becomes
from tests.in_process import eventually, running_worker
from ttsqueue.config import Settings
from ttsqueue.domain import JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence

pytestmark = pytest.mark.timeout(120)
WRONG = "not-the-secret-4417"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"TECH_RETRY_BASE_SECONDS": 1.0, "CALL_RING_TIMEOUT": 5, "WORKER_CONCURRENCY": 4}
    )


async def test_a_wrong_ami_secret_dials_nothing_and_says_why(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    asterisk: PrivateAsterisk,
) -> None:
    settings = settings.model_copy(
        update=asterisk.ami_settings(ASTERISK_AMI_SECRET=WRONG, TECH_MAX_RETRIES=1)
    )
    store = build_store(redis_client, settings).jobs
    presence = DialerPresence(redis_client, Keys(settings.REDIS_PREFIX))
    (job_id,) = await publish_many(broker, settings, store, [number("0006")], max_retries=0)
    refused = ("disconnected", "authentication failed: Authentication failed")

    async def refusal_reported() -> bool:
        return [(r.state, r.error) for r in await presence.alive()] == [refused]

    with capture_logs() as logs:
        async with running_worker(settings):
            await eventually(refusal_reported, 30, "the worker reporting the refused login")
            await health_becomes(api, "disconnected")
            jobs = await wait_jobs(store, [job_id], timeout=60)
    job = jobs[job_id]
    assert (job.status, job.call.outcome) == ("failed", "failed")
    assert job.call.reason is not None
    assert "authentication failed" in job.call.reason, job.call.reason
    # Asterisk's own view: a refused login by that user, and no call.
    assert f"failed to authenticate as '{asterisk.ami_user}'" in asterisk.log_text()
    assert asterisk.rings() == {}
    assert asterisk.ami_sessions() == []
    refusals = [e for e in logs if e["event"] == "ami login refused"]
    assert refusals
    assert {e["reason"] for e in refusals} == {"Authentication failed"}
    assert WRONG not in repr(logs)
    assert WRONG not in asterisk.log_text()


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """`directory` not writable for this process: a read-only bind mount when we are root
    (root writes through any mode bits), else mode 0555."""
    if os.geteuid() != 0:
        mode = directory.stat().st_mode
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(mode)
        return
    mount = ["mount", "--bind", str(directory), str(directory)]
    subprocess.run(mount, check=True, timeout=30)
    try:
        remount = ["mount", "-o", "remount,bind,ro", str(directory)]
        subprocess.run(remount, check=True, timeout=30)
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True, timeout=30)


async def test_a_spool_that_is_not_writable_dials_nothing_until_it_is(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    asterisk: PrivateAsterisk,
) -> None:
    settings = settings.model_copy(update=asterisk.callfile_settings(TECH_MAX_RETRIES=8))
    store = build_store(redis_client, settings).jobs
    presence = DialerPresence(redis_client, Keys(settings.REDIS_PREFIX))
    outgoing = asterisk.spool / "outgoing"
    async with running_worker(settings):
        await health_becomes(api, "connected")
        with read_only(outgoing):
            assert not os.access(outgoing, os.W_OK)
            (job_id,) = await publish_many(broker, settings, store, [number("0006")], max_retries=0)
            await health_becomes(api, "disconnected")
            reports = await presence.alive()

            # The job waits for the spool in technical retries, never dialed meanwhile.
            async def retried() -> bool:
                return any(
                    "technical retry" in (h.detail or "") for h in await store.history(job_id)
                )

            await eventually(retried, 30, "a technical retry")
            assert asterisk.rings() == {}
        await health_becomes(api, "connected")
        jobs = await wait_jobs(store, [job_id], timeout=60)
    assert [(r.state, r.error) for r in reports] == [("disconnected", f"{outgoing} not writable")]
    job = jobs[job_id]
    assert (job.status, job.call.outcome, job.call.reason) == ("completed", "answered", "played")
    assert job.attempts == 1
    assert asterisk.rings()[call_id(job_id)] == 1
    history = [h.status for h in await store.history(job_id)]
    assert history.count(JobStatus.CALLING) == 1
