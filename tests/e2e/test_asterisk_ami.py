"""API -> RabbitMQ -> worker -> AMI (the recorded server) -> the job's status and call outcome.

In one process, like tests/integration/test_pipeline.py: the API app, a worker (`serve`), and
the AMI server double on a local port; real RabbitMQ and Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection
from structlog.testing import capture_logs

from tests.doubles.ami_server import AmiServerDouble, running_ami_double
from tests.doubles.api_checks import (
    HOSTILE_ACCEPTED,
    finished,
    no_marker_in,
    refused_hostile_input,
    submit,
)
from tests.in_process import publish_job, running_worker
from ttsqueue.config import DialerName, Settings
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence

pytestmark = [pytest.mark.timeout(60), pytest.mark.settings(WORKER_CONCURRENCY=4)]
SECRET = "tts_secret-e2e"


@pytest.fixture
async def double() -> AsyncIterator[AmiServerDouble]:
    async with running_ami_double(secret=SECRET, time_scale=0.05, check_audio=True) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, double: AmiServerDouble) -> Settings:
    return settings.model_copy(
        update={
            "DIALER": DialerName.AMI,
            "ASTERISK_AMI_HOST": "127.0.0.1",
            "ASTERISK_AMI_PORT": double.port,
            "ASTERISK_AMI_USER": "tts",
            "ASTERISK_AMI_SECRET": SECRET,
            "ASTERISK_CALLER_ID": '"Alertas" <6015550100>',
            "CALL_RING_TIMEOUT": 5,
        }
    )


async def test_an_answered_call_completes_with_what_asterisk_reported(
    api: httpx.AsyncClient, settings: Settings, double: AmiServerDouble
) -> None:
    job_id = await submit(api, "3005050149")
    async with running_worker(settings):
        body = await finished(api, job_id)
        health = (await api.get("/health")).json()
    assert body["status"] == "completed"
    call = body["call"]
    assert (call["backend"], call["outcome"], call["reason"]) == ("ami", "answered", "played")
    assert call["simulated"] is False
    assert call["hangup_cause"] == "16"
    assert call["channel"].startswith("PJSIP/3005050149@trunk-")
    assert call["answered_at"]
    assert call["ended_at"]
    assert call["talk_s"] is not None
    assert health["connections"]["asterisk"] == "connected"
    (originate,) = double.originates
    assert originate.get("ChannelId") == job_id.replace("-", "") + "01"
    assert originate.variables["TTS_JOB_ID"] == job_id
    assert originate.get("CallerID") == '"Alertas" <6015550100>'
    assert originate.get("Timeout") == "5000"
    assert not originate.variables["TTS_FILE"].endswith(".wav")


@pytest.mark.parametrize(
    ("number", "status", "outcome", "reason"),
    [
        ("3005550001", "failed", "busy", "5"),
        ("3005550002", "failed", "no_answer", "3"),
        ("3005550003", "failed", "congestion", "8"),
        ("3005550010", "completed", "answered", "played"),
        ("3005550007", "completed", "answered", "hangup_during_playback"),
        ("3005550008", "failed", "failed", "playback_failed"),
    ],
)
async def test_every_recorded_case_ends_as_asterisk_said(
    api: httpx.AsyncClient,
    settings: Settings,
    number: str,
    status: str,
    outcome: str,
    reason: str,
) -> None:
    job_id = await submit(api, number, max_retries=0)
    async with running_worker(settings):
        body = await finished(api, job_id)
    assert (body["status"], body["call"]["outcome"], body["call"]["reason"]) == (
        status,
        outcome,
        reason,
    )
    assert body["attempts"] == 1


RETRIED = [
    ("3005550001", "busy", "5"),
    ("3005550002", "no_answer", "3"),
    ("3005550003", "congestion", "8"),
]


@pytest.mark.parametrize(("number", "outcome", "reason"), RETRIED)
async def test_telephony_failures_are_retried_max_retries_times_then_fail(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    double: AmiServerDouble,
    number: str,
    outcome: str,
    reason: str,
) -> None:
    store = build_store(redis_client, settings).jobs
    job_id = await publish_job(broker, settings, store, phone=number, max_retries=2, retry_delay=1)
    async with running_worker(settings):
        body = await finished(api, job_id)
    call = body["call"]
    assert (body["status"], call["outcome"], call["reason"], body["attempts"]) == (
        "failed",
        outcome,
        reason,
        3,
    )
    retries = [h["detail"] for h in body["history"] if h["status"] == "retrying"]
    assert retries == [f"{outcome}: retry in 1s"] * 2
    ids = [o.get("ChannelId") for o in double.originates]
    assert ids == [job_id.replace("-", "") + f"{n:02d}" for n in (1, 2, 3)]
    starts = [c.started for c in double.calls]
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(starts))


async def test_hostile_input_never_reaches_the_ami(
    api: httpx.AsyncClient, settings: Settings, double: AmiServerDouble
) -> None:
    await refused_hostile_input(api)
    jobs = [await submit(api, "3005050149", **fields) for fields in HOSTILE_ACCEPTED]
    async with running_worker(settings):
        bodies = [await finished(api, job_id) for job_id in jobs]
    assert {b["status"] for b in bodies} == {"completed"}
    assert len(double.originates) == len(jobs)
    no_marker_in(bytes(double.raw))
    value = re.compile(r"[^\r\n\x00&;|]*")
    for action in double.actions:
        for key, text in action:
            assert value.fullmatch(text), (key, text)
            if key.lower() == "variable":
                assert text.count(",") == 0


async def test_a_wrong_secret_is_reported_and_the_worker_keeps_running(
    api: httpx.AsyncClient,
    settings: Settings,
    double: AmiServerDouble,
    redis_client: Any,
) -> None:
    wrong = settings.model_copy(update={"ASTERISK_AMI_SECRET": "not-the-secret"})
    presence = DialerPresence(redis_client, Keys(settings.REDIS_PREFIX))
    with capture_logs() as logs:
        async with running_worker(wrong):
            await asyncio.sleep(2.5)
            health = (await api.get("/health")).json()
            logins = len(double.logins)
            reports = await presence.alive()
    # What /health says comes from the worker's own report, not from the API's fallback
    # (which says `disconnected` too when no worker reports anything).
    assert [(r.worker_id, r.backend, r.state, r.error) for r in reports] == [
        (settings.WORKER_ID, "ami", "disconnected", "authentication failed: Authentication failed")
    ]
    assert health["connections"]["asterisk"] == "disconnected"
    assert health["status"] == "healthy"
    assert 1 <= logins <= 3, double.logins
    assert not any(ok for _, ok in double.logins)
    refusals = [e for e in logs if e["event"] == "ami login refused"]
    assert refusals
    assert {(e["endpoint"].split(":")[0], e["reason"]) for e in refusals} == {
        ("127.0.0.1", "Authentication failed")
    }
    assert "not-the-secret" not in repr(logs)


async def test_an_ami_link_dropped_mid_call_still_ends_the_job(
    api: httpx.AsyncClient, settings: Settings, double: AmiServerDouble
) -> None:
    double.time_scale = 0.5  # a call of about 2 s, long enough to cut the link in the middle
    job_id = await submit(api, "3005050149")
    async with running_worker(settings):
        for _ in range(1000):
            if double.calls:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        await double.drop_connections()
        body = await finished(api, job_id)
    assert body["status"] == "completed"
    assert body["call"]["outcome"] == "answered"
    assert len(double.originates) == 1
    assert len(double.logins) >= 2
