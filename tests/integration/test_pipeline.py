"""The whole path in one process: API app -> RabbitMQ -> worker -> simulator -> Redis."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import make_settings
from tests.in_process import publish_job, running_worker, terminal, wait_for
from ttsqueue.config import Settings
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import JobLifecycle
from ttsqueue.tts.cache import AudioCache, Lease
from ttsqueue.worker.trunk import TrunkGuard

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, SIMULATOR_TIME_SCALE=0.01, WORKER_CONCURRENCY=4)


async def test_seed_call_is_completed(api: httpx.AsyncClient, settings: Settings) -> None:
    reply = await api.post(
        "/tts/call",
        json={"text": "Hola, su cita es mañana a las diez.", "phone_number": "3005050149"},
    )
    assert reply.status_code == 202, reply.text
    accepted = reply.json()
    assert accepted["success"] is True
    assert accepted["status"] == "queued"
    assert accepted["queue"] == "normal"
    async with running_worker(settings):
        body = await wait_for(api, accepted["job_id"], terminal)
    assert body["status"] == "completed"
    assert body["call"]["simulated"] is True
    assert body["call"]["outcome"] == "answered"
    assert body["e164"] == "+573005050149"
    assert body["attempts"] == 1
    assert [h["status"] for h in body["history"]] == [
        "queued",
        "processing",
        "calling",
        "completed",
    ]
    audio = await api.get(body["audio"]["url"])
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"
    wav = soundfile.info(io.BytesIO(audio.content))
    assert (wav.samplerate, wav.channels, wav.subtype) == (8000, 1, "PCM_16")
    stats = (await api.get("/queue/stats")).json()["statistics"]
    assert stats["jobs"]["by_status"]["completed"] == 1
    assert stats["metrics"]["succeeded"] == 1
    assert stats["calls"]["by_outcome"]["answered"] == 1


async def test_a_cached_message_is_pinned_by_the_start_and_counted_once(
    api: httpx.AsyncClient,
    settings: Settings,
    redis_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The speech cache's own touches (Redis calls), made by the worker.
    touches: list[str] = []
    touch = AudioCache.touch

    async def recording(self: AudioCache, key: str, *, lease: Lease | None) -> bool:
        touches.append(key)
        return await touch(self, key, lease=lease)

    monkeypatch.setattr(AudioCache, "touch", recording)
    call = {"text": "Su código es 4 8 1 5.", "phone_number": "3005050149"}
    keys = Keys(settings.REDIS_PREFIX)
    bodies = []
    touched_after = []  # touches made so far, after each job
    async with running_worker(settings):
        for _ in range(2):
            reply = await api.post("/tts/call", json=call)
            assert reply.status_code == 202, reply.text
            bodies.append(await wait_for(api, reply.json()["job_id"], terminal))
            touched_after.append(len(touches))
    assert [b["status"] for b in bodies] == ["completed", "completed"]
    assert [b["audio"]["cached"] for b in bodies] == [False, True]
    # The first job found nothing and spoke; the second's start pinned the entry, so the
    # speech cache did not touch it again.
    assert touched_after[0] > 0
    assert touched_after[1] == touched_after[0]
    stats = await redis_client.hgetall(keys.cache_stats)
    assert (stats.get("hits"), stats.get("misses")) == ("1", "1")
    # Both calls' leases were dropped by their endings (a lease set's last ZREM deletes it).
    assert [k async for k in redis_client.scan_iter(match=keys.cache_in_use("*"))] == []


async def test_busy_number_is_retried_then_fails(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
) -> None:
    store = build_store(redis_client, settings).jobs
    job_id = await publish_job(
        broker, settings, store, phone="3005550001", max_retries=2, retry_delay=1
    )
    async with running_worker(settings):
        body = await wait_for(api, job_id, terminal)
    assert body["status"] == "failed"
    assert body["call"]["outcome"] == "busy"
    assert body["attempts"] == 3
    calls = [h for h in body["history"] if h["status"] == "calling"]
    assert len(calls) == 3
    starts = [datetime.fromisoformat(h["at"]) for h in calls]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert all(gap >= 1.0 for gap in gaps), gaps
    statuses = [h["status"] for h in body["history"]]
    assert statuses.count("retrying") == 2
    stats = (await api.get("/queue/stats")).json()["statistics"]
    assert stats["calls"]["by_outcome"]["busy"] == 3
    assert stats["metrics"]["failed"] == 1


async def test_send_at_starts_on_time(api: httpx.AsyncClient, settings: Settings) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=2)
    reply = await api.post(
        "/tts/call",
        json={
            "text": "Recordatorio programado",
            "phone_number": "3005050149",
            "send_at": send_at.isoformat(),
        },
    )
    assert reply.status_code == 202, reply.text
    assert reply.json()["status"] == "scheduled"
    async with running_worker(settings):
        body = await wait_for(api, reply.json()["job_id"], terminal)
    assert body["status"] == "completed"
    started = next(h for h in body["history"] if h["status"] == "processing")
    lateness = (datetime.fromisoformat(started["at"]) - send_at).total_seconds()
    assert 0 <= lateness < 1.5, lateness


@pytest.mark.settings(RETRY_HOP_SECONDS=1, DELAY_HOLD_SECONDS=3, MAX_DELIVERIES=2)
@pytest.mark.timeout(40)
async def test_a_call_scheduled_far_ahead_waits_many_hops_and_starts_on_time(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    # 8 s ahead: twice through tts_hold, then twice through tts_retry; none of these trips
    # counts as a delivery of the due message (MAX_DELIVERIES=2 would otherwise fail it).
    send_at = datetime.now(UTC) + timedelta(seconds=8)
    reply = await api.post(
        "/tts/call",
        json={"text": "Cita mañana", "phone_number": "3005050149", "send_at": send_at.isoformat()},
    )
    assert reply.status_code == 202, reply.text
    async with running_worker(settings):
        body = await wait_for(api, reply.json()["job_id"], terminal, timeout=30)
    assert body["status"] == "completed", body
    started = next(h for h in body["history"] if h["status"] == "processing")
    lateness = (datetime.fromisoformat(started["at"]) - send_at).total_seconds()
    assert 0 <= lateness < 1.5, lateness


async def test_canceled_job_is_never_called(api: httpx.AsyncClient, settings: Settings) -> None:
    reply = await api.post("/tts/call", json={"text": "Cancelar", "phone_number": "3005050149"})
    job_id = reply.json()["job_id"]
    canceled = await api.delete(f"/tts/call/{job_id}")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "canceled"
    again = await api.delete(f"/tts/call/{job_id}")
    assert again.status_code == 409
    assert again.json()["code"] == "job_not_cancelable"
    async with running_worker(settings):
        await wait_for_queues_empty(api)
    body = (await api.get(f"/tts/status/{job_id}")).json()
    assert body["status"] == "canceled"
    assert "calling" not in [h["status"] for h in body["history"]]


async def wait_for_queues_empty(api: httpx.AsyncClient, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queues = (await api.get("/queue/stats")).json()["statistics"]["queues"]
        if queues["normal"] == 0 and queues["priority"] == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("queues did not drain")


async def test_high_job_submitted_last_overtakes_1000_waiting(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    body = {"text": "Aviso general", "phone_number": "3005050149"}
    for _ in range(1000):
        assert (await api.post("/tts/call", json=body)).status_code == 202
    high = await api.post("/tts/call", json={**body, "priority": "high"})
    assert high.json()["queue"] == "priority"
    async with running_worker(settings):
        await wait_for(api, high.json()["job_id"], terminal)
    jobs = (await api.get("/tts/jobs", params={"status": "completed", "limit": 200})).json()
    assert jobs["count"] > 0
    # Count the normal jobs that started processing before the high one did.
    high_body = (await api.get(f"/tts/status/{high.json()['job_id']}")).json()
    high_start = next(h["at"] for h in high_body["history"] if h["status"] == "processing")
    started_before = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await api.get("/tts/jobs", params=params)).json()
        for summary in page["jobs"]:
            if summary["priority"] == "high" or summary["status"] == "queued":
                continue
            detail = (await api.get(f"/tts/status/{summary['job_id']}")).json()
            start = next(h["at"] for h in detail["history"] if h["status"] == "processing")
            started_before += start < high_start
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert started_before <= 1 * settings.WORKER_CONCURRENCY


async def test_a_listing_cursor_that_is_not_one_is_refused(api: httpx.AsyncClient) -> None:
    for cursor in ("abc", "12", "-x", "1-" + "a" * 100):
        reply = await api.get("/tts/jobs", params={"cursor": cursor})
        assert reply.status_code == 422, cursor
        assert reply.json()["error"].startswith("cursor"), reply.json()


async def test_bad_input_never_creates_a_job(api: httpx.AsyncClient) -> None:
    base = {"text": "Hola", "phone_number": "3005050149"}
    bad_bodies: list[tuple[str, Any]] = [
        ("phone_number", {**base, "phone_number": "3005050149\r\nAction: Originate"}),
        ("phone_number", {**base, "phone_number": "3005050149&SIP/evil"}),
        ("phone_number", {**base, "phone_number": "300/505/0149"}),
        ("phone_number", {**base, "phone_number": "trunk@3005050149"}),
        ("phone_number", {**base, "phone_number": "300505,0149"}),
        ("priority", {**base, "priority": "urgent"}),
        ("text", {**base, "text": "   "}),
        ("text", {**base, "text": "x" * 1001}),
        ("send_at", {**base, "send_at": "mañana"}),
        ("send_at", {**base, "send_at": (datetime.now(UTC) + timedelta(days=31)).isoformat()}),
        ("language", {**base, "language": "xx-nope"}),
    ]
    for field, body in bad_bodies:
        reply = await api.post("/tts/call", json=body)
        assert 400 <= reply.status_code < 500, (field, reply.status_code)
        error = reply.json()
        assert error["success"] is False
        assert field in error["error"], (field, error)
    malformed = await api.post(
        "/tts/call", content=b'{"text": "Hola", ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code in (400, 422)
    assert malformed.json()["success"] is False
    huge = await api.post(
        "/tts/call", content=b"x" * 200_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413
    stats = (await api.get("/queue/stats")).json()["statistics"]
    assert stats["jobs"]["total"] == 0
    assert stats["queues"]["normal"] == 0


async def test_idempotency_key_returns_the_same_job(api: httpx.AsyncClient) -> None:
    body = {"text": "Código 1234", "phone_number": "3005050149"}
    headers = {"Idempotency-Key": "order-77"}
    first = await api.post("/tts/call", json=body, headers=headers)
    again = await api.post("/tts/call", json=body, headers=headers)
    other = await api.post("/tts/call", json={**body, "text": "Código 9999"}, headers=headers)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["job_id"] == first.json()["job_id"]
    assert other.status_code == 409
    assert (await api.get("/queue/stats")).json()["statistics"]["queues"]["normal"] == 1


async def test_broker_down_at_submission_gives_503_and_no_job(
    api: httpx.AsyncClient, settings: Settings, redis_client: Any
) -> None:
    transport = api._transport
    assert isinstance(transport, httpx.ASGITransport)
    ctx = transport.app.state.ctx  # type: ignore[attr-defined]
    await ctx.broker.close()
    reply = await api.post("/tts/call", json={"text": "Hola", "phone_number": "3005050149"})
    assert reply.status_code == 503
    assert reply.json()["success"] is False
    store = build_store(redis_client, settings).jobs
    assert (await store.counts_by_status())[0] == 0
    health = await api.get("/health")
    assert health.status_code == 503
    assert health.json()["connections"]["rabbitmq"] == "disconnected"


async def accepted_calls(api: httpx.AsyncClient, count: int) -> list[str]:
    """The ids of `count` calls to the same number, each answered 202."""
    job_ids = []
    for _ in range(count):
        reply = await api.post("/tts/call", json={"text": "Aviso", "phone_number": "3005050149"})
        assert reply.status_code == 202, reply.text
        job_ids.append(reply.json()["job_id"])
    return job_ids


async def test_a_call_gives_up_its_line_in_the_step_that_records_its_outcome(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Completed, retried and failed calls leave their line in the write of their outcome:
    the trunk's own release is never needed, and no line is left held (leases last 30 s)."""
    releases: list[str] = []
    own_release = TrunkGuard.release

    async def counted(guard: TrunkGuard, lease_id: str) -> None:
        releases.append(lease_id)
        await own_release(guard, lease_id)

    monkeypatch.setattr(TrunkGuard, "release", counted)
    store = build_store(redis_client, settings).jobs
    busy = await publish_job(
        broker, settings, store, phone="3005550001", max_retries=1, retry_delay=1
    )
    answered = await accepted_calls(api, 3)
    keys = Keys(settings.REDIS_PREFIX)
    async with running_worker(settings):
        ended = [await wait_for(api, job_id, terminal) for job_id in [*answered, busy]]
        assert await redis_client.zcard(keys.call_slots) == 0
    assert [body["status"] for body in ended] == ["completed"] * 3 + ["failed"]
    assert [h["status"] for h in ended[-1]["history"]].count("retrying") == 1
    assert releases == []


@pytest.fixture
def asked_alone(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The jobs whose attempt claim was asked for in a step of its own (`claim_call`)."""
    asked: list[str] = []
    own_claim_call = JobLifecycle.claim_call

    async def counted(lifecycle: JobLifecycle, job_id: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(job_id)
        return await own_claim_call(lifecycle, job_id, *args, **kwargs)

    monkeypatch.setattr(JobLifecycle, "claim_call", counted)
    return asked


async def test_a_call_with_a_free_line_takes_its_claim_with_the_grant(
    api: httpx.AsyncClient, settings: Settings, redis_client: Any, asked_alone: list[str]
) -> None:
    """No calling window or contact cap, a line free: the attempt's claim (and the
    do-not-call check) ride on the line's grant, and no claim is asked for on its own."""
    job_ids = await accepted_calls(api, 3)
    keys = Keys(settings.REDIS_PREFIX)
    async with running_worker(settings):
        ended = [await wait_for(api, job_id, terminal) for job_id in job_ids]
    assert [body["status"] for body in ended] == ["completed"] * 3
    assert all([h["status"] for h in body["history"]].count("calling") == 1 for body in ended)
    for job_id in job_ids:
        owner = await redis_client.get(keys.attempt(job_id, 1))
        assert owner is not None
        assert owner.startswith(settings.WORKER_ID)
    assert asked_alone == []


async def test_a_number_listed_after_acceptance_is_refused_by_the_claim_with_the_line(
    api: httpx.AsyncClient, settings: Settings, asked_alone: list[str]
) -> None:
    """No window, no cap: the do-not-call check rides on the line's grant and still stops
    the dial (SPEC §13: `suppressed` before dialing)."""
    reply = await api.post("/tts/call", json={"text": "Aviso", "phone_number": "3005050153"})
    assert reply.status_code == 202, reply.text
    assert (await api.put("/dnc/3005050153")).status_code in (200, 201)
    async with running_worker(settings):
        body = await wait_for(api, reply.json()["job_id"], terminal)
    assert body["status"] == "failed"
    assert body["call"]["outcome"] == "suppressed"
    assert "calling" not in [h["status"] for h in body["history"]]
    assert body["attempts"] == 0
    assert asked_alone == []
