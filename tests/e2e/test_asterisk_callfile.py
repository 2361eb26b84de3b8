"""API -> RabbitMQ -> worker -> call file in the spool (the recorded spool) -> status, outcome.

In one process, like tests/integration/test_pipeline.py, with the spool double moving files
from `outgoing/` to `outgoing_done/` as the recordings show; real RabbitMQ and Redis.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.doubles.api_checks import (
    HOSTILE_ACCEPTED,
    finished,
    no_marker_in,
    refused_hostile_input,
    submit,
)
from tests.doubles.spool import SpoolDouble, running_spool_double
from tests.in_process import publish_job, running_worker
from ttsqueue.config import DialerName, Settings
from ttsqueue.store.factory import build_store

pytestmark = [pytest.mark.timeout(60), pytest.mark.settings(WORKER_CONCURRENCY=4)]


@pytest.fixture
async def double(tmp_path: Path) -> AsyncIterator[SpoolDouble]:
    async with running_spool_double(tmp_path / "spool", time_scale=0.05) as spool:
        yield spool


@pytest.fixture
def settings(settings: Settings, double: SpoolDouble) -> Settings:
    return settings.model_copy(
        update={
            "DIALER": DialerName.AUTO,  # a writable spool and no AMI host: call files
            "ASTERISK_SPOOL_DIR": double.spool,
            "CALL_RING_TIMEOUT": 5,
        }
    )


@pytest.mark.parametrize(
    ("number", "status", "outcome", "reason"),
    [
        ("3005050149", "completed", "answered", "played"),
        ("3005550001", "failed", "busy", "5"),
        ("3005550002", "failed", "no_answer", "3"),
        ("3005550003", "failed", "congestion", "8"),
        ("3005550007", "completed", "answered", "hangup_during_playback"),
        ("3005550008", "failed", "failed", "playback_failed"),
    ],
)
async def test_every_recorded_case_ends_as_asterisk_said(
    api: httpx.AsyncClient,
    settings: Settings,
    double: SpoolDouble,
    number: str,
    status: str,
    outcome: str,
    reason: str,
) -> None:
    job_id = await submit(api, number, max_retries=0)
    async with running_worker(settings):
        body = await finished(api, job_id)
        health = (await api.get("/health")).json()
    call = body["call"]
    assert (body["status"], call["outcome"], call["reason"]) == (status, outcome, reason)
    assert call["backend"] == "callfile"
    assert call["simulated"] is False
    assert health["connections"]["asterisk"] == "connected"
    name = f"{job_id}-1.call"
    assert double.handovers[name] == 1
    content = double.received[name]
    assert f"Set: TTS_JOB_ID={job_id}\n" in content
    assert "MaxRetries: 0\n" in content
    assert "WaitTime: 5\n" in content
    archived = (double.done / name).read_text()
    assert archived.startswith(content)
    answered = outcome == "answered" or reason == "playback_failed"
    assert archived.endswith("Status: Completed\n" if answered else "Status: Expired\n")


@pytest.mark.parametrize(
    ("number", "outcome", "reason"),
    [
        ("3005550001", "busy", "5"),
        ("3005550002", "no_answer", "3"),
        ("3005550003", "congestion", "8"),
    ],
)
async def test_telephony_failures_are_retried_max_retries_times_then_fail(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    double: SpoolDouble,
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
    names = [f"{job_id}-{n}.call" for n in (1, 2, 3)]
    assert sorted(double.handovers) == names
    assert set(double.handovers.values()) == {1}
    for name in names:
        assert (double.done / name).read_text().endswith("Status: Expired\n")
    dialed = [double.dialed[name] for name in names]
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(dialed))


async def test_hostile_input_never_reaches_a_call_file(
    api: httpx.AsyncClient, settings: Settings, double: SpoolDouble
) -> None:
    await refused_hostile_input(api)
    jobs = [await submit(api, "3005050149", **fields) for fields in HOSTILE_ACCEPTED]
    async with running_worker(settings):
        bodies = [await finished(api, job_id) for job_id in jobs]
    assert {b["status"] for b in bodies} == {"completed"}
    assert len(double.received) == len(jobs)
    for content in double.received.values():
        no_marker_in(content.encode())
        assert "\r" not in content
        assert "\x00" not in content
        for line in content.splitlines():
            key, _, value = line.partition(": ")
            assert key in {
                "Channel",
                "CallerID",
                "WaitTime",
                "MaxRetries",
                "Context",
                "Extension",
                "Priority",
                "Set",
                "Archive",
            }, line
            assert not set(value) & set("&;|,")
