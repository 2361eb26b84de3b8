"""The calling policy on the whole path (API -> RabbitMQ -> worker -> simulator -> Redis), with
the policy's clock put at chosen moments of a Colombian week (time flows from there):
do-not-call at submission (409) and before dialing (`suppressed`), a job outside its window held
as `scheduled` until the opening and never dialed early, the window checked again by the worker
and for telephony retries, and the daily contact cap shared by two workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.conftest import in_process_api, make_settings
from tests.factories import lifecycle_of, make_job
from tests.in_process import running_worker, terminal, wait_for
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage, JobStatus, iso
from ttsqueue.policy.gate import Open, WaitUntil, build_calling_policy
from ttsqueue.policy.rules import JobPolicy
from ttsqueue.store.factory import keys_for
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(120)

BOGOTA = ZoneInfo("America/Bogota")
NUMBER = "3005050149"


def bogota(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BOGOTA)


class StartingClock:
    """The system clock shifted so that it reads `at` when the test starts its scenario (once
    the API is up, however long a loaded machine took to start it); time flows from there."""

    def __init__(self, at: datetime) -> None:
        self.at = at.astimezone(UTC)
        self.restart()

    def restart(self) -> None:
        self._offset = self.at - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        SIMULATOR_TIME_SCALE=0.01,
        WORKER_CONCURRENCY=4,
        CALLING_WINDOWS="co-ley-2300",
    )


@contextlib.asynccontextmanager
async def api_at(
    settings: Settings, clock: StartingClock, broker: AbstractRobustConnection, redis_client: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process_api(settings, clock) as client:
        clock.restart()
        yield client


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


async def submit(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    reply = await api.post("/tts/call", json={"text": "Su cita es mañana", **fields})
    assert reply.status_code == 202, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_listed_number_is_refused_at_submission(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    clock = StartingClock(bogota("2026-03-06 10:00"))
    async with api_at(settings, clock, broker, redis_client) as api:
        assert (await api.put(f"/dnc/{NUMBER}")).status_code in (200, 201)
        refused = await api.post("/tts/call", json={"text": "hola", "phone_number": NUMBER})
        assert refused.status_code == 409
        assert refused.json()["code"] == "do_not_call"
        assert refused.json()["details"][0]["field"] == "phone_number"
        batch = await api.post(
            "/tts/calls",
            json={
                "calls": [
                    {"text": "hola", "phone_number": "+57 300 505 0149"},
                    {"text": "hola", "phone_number": "3005050150"},
                ]
            },
        )
        assert batch.status_code == 202, batch.text
        results = batch.json()["results"]
        assert [r["success"] for r in results] == [False, True]
        assert results[0]["code"] == "do_not_call"
        # An emergency is not exempt from the list.
        urgent = await api.post(
            "/tts/call",
            json={"text": "hola", "phone_number": NUMBER, "ignore_calling_windows": True},
        )
        assert urgent.status_code == 409


async def test_bad_policy_fields_are_named(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    clock = StartingClock(bogota("2026-03-06 10:00"))
    async with api_at(settings, clock, broker, redis_client) as api:
        for field, value in (
            ("calling_windows", "mon 25:00-26:00"),
            ("calling_windows", "co-ley-9999"),
            ("timezone", "Mars/Olympus"),
            ("timezone", "../../etc/passwd"),
            ("ignore_calling_windows", "yes"),
        ):
            reply = await api.post(
                "/tts/call", json={"text": "hola", "phone_number": NUMBER, field: value}
            )
            assert reply.status_code == 422, (field, value, reply.text)
            assert field in reply.json()["error"]


async def test_sunday_job_waits_for_monday_seven(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    clock = StartingClock(bogota("2026-03-08 10:00"))  # a Sunday
    async with api_at(settings, clock, broker, redis_client) as api:
        accepted = await submit(api, phone_number=NUMBER)
        assert accepted["status"] == "scheduled"
        body = (await api.get(f"/tts/status/{accepted['job_id']}")).json()
        opening = clock.now() - datetime.now(BOGOTA) + parse(body["scheduled_for"])
        assert abs(opening - bogota("2026-03-09 07:00")) < timedelta(seconds=1)
        # Same rules with a request zone: 10:00 in Bogotá is 11:00 in New York (EDT).
        shifted = await submit(api, phone_number=NUMBER, timezone="America/New_York")
        assert shifted["status"] == "scheduled"
        # An emergency is called now; a per-job window open on Sundays too.
        urgent = await submit(api, phone_number=NUMBER, ignore_calling_windows=True)
        assert urgent["status"] == "queued"
        sundays = await submit(api, phone_number=NUMBER, calling_windows="sun 09:00-12:00")
        assert sundays["status"] == "queued"


async def test_a_colombian_holiday_holds_the_call_to_the_next_working_morning(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    # Monday 23 March 2026: San José (19 March) moved to Monday by Ley Emiliani.
    clock = StartingClock(bogota("2026-03-23 10:00"))
    async with api_at(settings, clock, broker, redis_client) as api:
        accepted = await submit(api, phone_number=NUMBER)
        assert accepted["status"] == "scheduled"
        body = (await api.get(f"/tts/status/{accepted['job_id']}")).json()
        opening = clock.now() - datetime.now(BOGOTA) + parse(body["scheduled_for"])
        assert abs(opening - bogota("2026-03-24 07:00")) < timedelta(seconds=1)
        # A per-job window keeps the configured holidays: still closed that Monday.
        mondays = await submit(api, phone_number=NUMBER, calling_windows="mon 08:00-18:00")
        body = (await api.get(f"/tts/status/{mondays['job_id']}")).json()
        opening = clock.now() - datetime.now(BOGOTA) + parse(body["scheduled_for"])
        assert abs(opening - bogota("2026-03-30 08:00")) < timedelta(seconds=1)


async def test_held_job_is_dialed_when_the_window_opens_not_before(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    clock = StartingClock(bogota("2026-03-09 06:59:57"))  # Monday, 3 s before the opening
    async with api_at(settings, clock, broker, redis_client) as api:
        accepted = await submit(api, phone_number=NUMBER)
        assert accepted["status"] == "scheduled"
        async with running_worker(settings, clock):
            body = await wait_for(api, accepted["job_id"], terminal)
    assert body["status"] == "completed", body
    assert body["call"]["outcome"] == "answered"
    scheduled_for = parse(body["scheduled_for"])
    due = next(h for h in body["history"] if h["status"] == "queued")
    assert parse(due["at"]) >= scheduled_for
    calling = next(h for h in body["history"] if h["status"] == "calling")
    offset = clock.now() - datetime.now(BOGOTA)
    assert parse(calling["at"]) + offset >= bogota("2026-03-09 07:00")


async def test_worker_holds_a_job_whose_window_closed_and_suppresses_a_listed_number(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    clock = StartingClock(bogota("2026-03-09 18:59:55"))  # Monday, 5 s before closing
    async with api_at(settings, clock, broker, redis_client) as api:
        late = await submit(api, phone_number="3005050151")
        listed_later = await submit(api, phone_number="3005050152")
        assert late["status"] == listed_later["status"] == "queued"
        assert (await api.put("/dnc/3005050152")).status_code in (200, 201)
        closed = bogota("2026-03-09 19:00:00.5")
        await asyncio.sleep(max(0.0, (closed - clock.now()).total_seconds()))
        async with running_worker(settings, clock):
            held = await wait_for(api, late["job_id"], lambda b: b["status"] == "scheduled")
            suppressed = await wait_for(api, listed_later["job_id"], terminal)
    offset = clock.now() - datetime.now(BOGOTA)
    assert abs(parse(held["scheduled_for"]) + offset - bogota("2026-03-10 07:00")) < timedelta(
        seconds=1
    )
    assert held["attempts"] == 0
    assert [h["status"] for h in held["history"]] == ["queued", "processing", "scheduled"]
    assert "outside_calling_window" in held["history"][-1]["detail"]
    assert suppressed["status"] == "failed"
    assert suppressed["call"]["outcome"] == "suppressed"
    assert "calling" not in [h["status"] for h in suppressed["history"]]
    assert suppressed["attempts"] == 0


async def test_a_retry_that_would_fall_outside_the_window_waits_for_the_next_opening(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    clock = StartingClock(bogota("2026-03-09 18:59:00"))
    async with api_at(settings, clock, broker, redis_client) as api:
        busy = await submit(api, phone_number="3005050001", max_retries=1, retry_delay=120)
        async with running_worker(settings, clock):
            body = await wait_for(api, busy["job_id"], lambda b: b["status"] == "retrying")
    retry = body["history"][-1]
    assert retry["status"] == "retrying"
    assert "outside_calling_window" in retry["detail"]
    assert body["attempts"] == 1


async def test_one_contact_a_day_across_two_workers(
    tmp_path: Path, broker: AbstractRobustConnection, redis_client: Any, settings: Settings
) -> None:
    clock = StartingClock(bogota("2026-03-10 09:00"))  # Tuesday morning
    async with api_at(settings, clock, broker, redis_client) as api:
        jobs = [await submit(api, phone_number=NUMBER) for _ in range(6)]
        other = await submit(api, phone_number="3005050160")
        async with (
            running_worker(settings, clock, "cap-a"),
            running_worker(settings, clock, "cap-b"),
        ):
            await wait_for(api, other["job_id"], terminal)
            for j in jobs:
                await wait_for(
                    api, j["job_id"], lambda b: b["status"] in {"completed", "scheduled"}
                )
            bodies = [(await api.get(f"/tts/status/{j['job_id']}")).json() for j in jobs]
    assert sorted(b["status"] for b in bodies) == ["completed"] + ["scheduled"] * 5
    offset = clock.now() - datetime.now(BOGOTA)
    for body in bodies:
        if body["status"] == "scheduled":
            assert "contact_cap" in body["history"][-1]["detail"]
            opening = parse(body["scheduled_for"]) + offset
            assert abs(opening - bogota("2026-03-11 07:00")) < timedelta(seconds=1)


async def test_a_call_resumed_after_its_worker_was_lost_counts_as_the_contact(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    """The attempt's call was placed (claim taken, job `calling`) by a worker that died; the
    worker that gets the redelivered message follows it and settles that same claim."""
    clock = StartingClock(bogota("2026-03-10 09:00"))
    policy = build_calling_policy(settings, redis_client, keys_for(settings), clock)
    lifecycle = lifecycle_of(redis_client, settings)
    job = make_job(status=JobStatus.CALLING, phone="3005050170")
    job.attempts = 1
    job.call.started_at = iso(datetime.now(BOGOTA))
    await lifecycle.create(job)
    claimant = f"{job.job_id}:1"
    opened = await policy.check(job.e164, JobPolicy(), claimant=claimant)
    assert isinstance(opened, Open)
    assert opened.claim is not None
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    await Publisher(broker, names).to_work_queue(
        names.work_queue(job.priority), JobMessage(job_id=job.job_id).encode(), job.job_id
    )
    async with (
        api_at(settings, clock, broker, redis_client) as api,
        running_worker(settings, clock),
    ):
        body = await wait_for(api, job.job_id, terminal)
    assert body["status"] == "completed"
    key = Keys(settings.REDIS_PREFIX).contacts(job.e164, opened.claim.local_day.isoformat())
    assert await redis_client.zscore(key, claimant) == float("inf")
    # The day's contact is made: another job for that number waits for tomorrow.
    again = await policy.check(job.e164, JobPolicy(), claimant="other:1")
    assert isinstance(again, WaitUntil)
    assert again.reason == "contact_cap"
