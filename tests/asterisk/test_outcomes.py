"""API -> RabbitMQ -> worker -> a real Asterisk -> the job's outcome, for both backends.

Every callee the replays cover, dialed at once through one worker: the outcome, the reason,
and from Asterisk's own log that each attempt rang exactly once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.fake_phones import number
from tests.asterisk.instance import PrivateAsterisk
from tests.doubles.api_checks import finished, submit
from tests.in_process import publish_job, running_worker
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store

pytestmark = pytest.mark.timeout(120)
# number -> (status, call.outcome, call.reason), as Asterisk tells it.
EXPECTED = {
    number("0006"): ("completed", "answered", "played"),
    number("0010"): ("completed", "answered", "played"),  # rings 2 s first
    number("0007"): ("completed", "answered", "hangup_during_playback"),
    number("0008"): ("failed", "failed", "playback_failed"),
    number("0001"): ("failed", "busy", "5"),
    number("0002"): ("failed", "no_answer", "3"),
    number("0009"): ("failed", "no_answer", "3"),  # never rings
    number("0003"): ("failed", "congestion", "8"),
    number("0015"): ("failed", "failed", "0"),  # unallocated number
}
ANSWERED = {n for n, (_, outcome, _) in EXPECTED.items() if outcome == "answered"}
RETRIED = number("0001", "300666")  # busy, retried once


@pytest.fixture(params=["ami", "callfile"])
def backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def settings(settings: Settings, shared_asterisk: PrivateAsterisk, backend: str) -> Settings:
    return settings.model_copy(
        update=shared_asterisk.settings_for(
            backend, CALL_RING_TIMEOUT=5, WORKER_CONCURRENCY=12, CALLS_PER_SECOND=50.0
        )
    )


async def test_every_outcome_as_asterisk_tells_it(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    shared_asterisk: PrivateAsterisk,
    backend: str,
) -> None:
    store = build_store(redis_client, settings).jobs
    jobs = {n: await submit(api, n, max_retries=0) for n in EXPECTED}
    retried = await publish_job(
        broker, settings, store, phone=RETRIED, max_retries=1, retry_delay=1
    )
    async with running_worker(settings):
        bodies = dict(
            zip(
                [*jobs, RETRIED],
                await asyncio.gather(
                    *(finished(api, job_id, timeout=60) for job_id in [*jobs.values(), retried])
                ),
                strict=True,
            )
        )
    found = {n: (b["status"], b["call"]["outcome"], b["call"]["reason"]) for n, b in bodies.items()}
    assert found == {**EXPECTED, RETRIED: ("failed", "busy", "5")}

    rings = shared_asterisk.rings()
    for n, job_id in jobs.items():
        body = bodies[n]
        assert body["attempts"] == 1
        assert body["call"]["backend"] == backend
        assert rings[job_id.replace("-", "") + "01"] == 1, n
    assert bodies[RETRIED]["attempts"] == 2
    assert [rings[retried.replace("-", "") + f"0{a}"] for a in (1, 2)] == [1, 1]

    for n in ANSWERED:
        call = bodies[n]["call"]
        assert call["hangup_cause"] == "16", n
        assert call["answered_at"], n
        assert call["talk_s"] is not None, n
        assert call["talk_s"] > 0.5, (n, call)
        if backend == "ami":
            assert call["channel"].startswith(f"Local/{n}@fake-phone-"), call
