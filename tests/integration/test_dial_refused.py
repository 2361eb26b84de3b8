"""A dial the backend refuses: the attempt's claim is dropped again, the job goes back to
`queued` for a technical retry (never `calling`), and that retry dials once and completes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import make_settings
from tests.doubles.ami_server import (
    ALL_CLASSES,
    AmiServerDouble,
    ami_dialer_settings,
    running_ami_double,
)
from tests.in_process import publish_job, running_worker
from ttsqueue.config import Settings
from ttsqueue.domain import JobStatus
from ttsqueue.store.factory import build_store

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def double() -> AsyncIterator[AmiServerDouble]:
    async with running_ami_double(time_scale=0.05) as server:
        yield server


def _originates_sent(double: AmiServerDouble) -> int:
    return sum(1 for action in double.actions if ("Action", "Originate") in action)


@pytest.fixture
def settings(tmp_path: Path, double: AmiServerDouble) -> Settings:
    """The `ami` dialer pointed at the double; technical retries half a second apart."""
    return make_settings(tmp_path, **ami_dialer_settings(double), TECH_RETRY_BASE_SECONDS=0.5)


async def test_a_refused_dial_is_retried_once_and_dialed_once(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    double: AmiServerDouble,
) -> None:
    store = build_store(redis_client, settings).jobs
    double.write = ALL_CLASSES - {"originate"}  # the first Originate: "Permission denied"
    async with running_worker(settings):
        job_id = await publish_job(broker, settings, store)
        deadline = time.monotonic() + 30
        while not any("technical retry" in (h.detail or "") for h in await store.history(job_id)):
            assert time.monotonic() < deadline, "the refused dial was not retried"
            await asyncio.sleep(0.02)
        assert _originates_sent(double) == 1
        assert not await store.attempt_placed(job_id, 1)
        double.write = ALL_CLASSES
        while await store.get_status(job_id) is not JobStatus.COMPLETED:
            assert time.monotonic() < deadline, "the technical retry did not complete"
            await asyncio.sleep(0.05)
    history = [h.status for h in await store.history(job_id)]
    assert history == ["queued", "processing", "queued", "processing", "calling", "completed"]
    job = await store.get(job_id)
    assert job is not None
    assert job.attempts == 1
    assert _originates_sent(double) == 2
    assert len(double.originates) == 1  # one call placed
