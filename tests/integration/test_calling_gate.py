"""The decision a worker asks for before dialing (`CallingPolicy.check`), on real Redis with a
clock the test sets: do-not-call first, then the window in the callee's zone, then the daily
contact cap; and the window alone for submissions and retries (`opening`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import make_settings
from ttsqueue.config import Settings
from ttsqueue.policy.clock import FixedClock, OffsetClock, SystemClock
from ttsqueue.policy.gate import CallingPolicy, Open, Suppressed, WaitUntil, build_calling_policy
from ttsqueue.policy.rules import JobPolicy
from ttsqueue.store.factory import keys_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.settings(CALLING_WINDOWS="co-ley-2300")]

BOGOTA = ZoneInfo("America/Bogota")
NUMBER = "+573005050149"
JOB = JobPolicy()


def bogota(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BOGOTA)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(bogota("2026-03-06 10:00"))  # a Friday


@pytest.fixture
def policy(settings: Settings, redis_client: Any, clock: FixedClock) -> CallingPolicy:
    return build_calling_policy(settings, redis_client, keys_for(settings), clock)


async def test_open_inside_the_window_with_a_claim(policy: CallingPolicy) -> None:
    decision = await policy.check(NUMBER, JOB, claimant="job-1:1")
    assert isinstance(decision, Open)
    assert decision.zone == "America/Bogota"
    assert decision.claim is not None
    assert decision.claim.local_day.isoformat() == "2026-03-06"


async def test_sunday_waits_for_monday_morning(policy: CallingPolicy, clock: FixedClock) -> None:
    clock.set(bogota("2026-03-08 10:00"))
    decision = await policy.check(NUMBER, JOB, claimant="job-1:1")
    assert decision == WaitUntil(
        bogota("2026-03-09 07:00"), "outside_calling_window", "America/Bogota"
    )
    # Nothing was claimed for a call that did not happen.
    assert await policy.ledger.contacts(NUMBER, clock.now().date()) == 0


async def test_a_holiday_waits_and_says_so(policy: CallingPolicy, clock: FixedClock) -> None:
    clock.set(bogota("2026-03-23 09:00"))  # San José, moved to Monday
    decision = await policy.check(NUMBER, JOB, claimant="job-1:1")
    assert isinstance(decision, WaitUntil)
    assert (decision.at, decision.reason) == (bogota("2026-03-24 07:00"), "holiday")


async def test_do_not_call_comes_first(policy: CallingPolicy, clock: FixedClock) -> None:
    await policy.dnc.add(NUMBER, "key:test")
    assert await policy.check(NUMBER, JOB, claimant="job-1:1") == Suppressed("do_not_call")
    clock.set(bogota("2026-03-08 10:00"))  # closed, and still suppressed rather than waiting
    assert await policy.check(NUMBER, JOB, claimant="job-1:1") == Suppressed("do_not_call")
    assert await policy.check(NUMBER, JobPolicy(ignore_calling_windows=True), claimant="x:1") == (
        Suppressed("do_not_call")
    )


async def test_one_answered_contact_a_day(policy: CallingPolicy, clock: FixedClock) -> None:
    first = await policy.check(NUMBER, JOB, claimant="job-1:1")
    assert isinstance(first, Open)
    # While the first call is under way, a second job for the same person waits.
    waiting = await policy.check(NUMBER, JOB, claimant="job-2:1")
    assert waiting == WaitUntil(bogota("2026-03-07 08:00"), "contact_cap", "America/Bogota")
    await policy.settle(first, answered=True)
    assert await policy.check(NUMBER, JOB, claimant="job-2:1") == waiting
    # On Saturday the count starts over; after Saturday's contact, Monday is next.
    clock.set(bogota("2026-03-07 08:00"))
    saturday = await policy.check(NUMBER, JOB, claimant="job-2:1")
    assert isinstance(saturday, Open)
    await policy.settle(saturday, answered=True)
    assert await policy.check(NUMBER, JOB, claimant="job-3:1") == WaitUntil(
        bogota("2026-03-09 07:00"), "contact_cap", "America/Bogota"
    )


async def test_an_unanswered_call_is_no_contact(policy: CallingPolicy) -> None:
    busy = await policy.check(NUMBER, JOB, claimant="job-1:1")
    assert isinstance(busy, Open)
    await policy.settle(busy, answered=False)
    assert isinstance(await policy.check(NUMBER, JOB, claimant="job-1:2"), Open)


async def test_workers_racing_for_one_person(policy: CallingPolicy) -> None:
    decisions = await asyncio.gather(
        *(policy.check(NUMBER, JOB, claimant=f"job-{n}:1") for n in range(20))
    )
    assert sum(isinstance(d, Open) for d in decisions) == 1
    assert {d.reason for d in decisions if isinstance(d, WaitUntil)} == {"contact_cap"}


async def test_emergencies_ignore_windows_and_cap(policy: CallingPolicy, clock: FixedClock) -> None:
    clock.set(bogota("2026-03-08 03:00"))
    urgent = JobPolicy(ignore_calling_windows=True)
    for n in range(3):
        decision = await policy.check(NUMBER, urgent, claimant=f"alert-{n}:1")
        assert decision == Open("America/Bogota")


async def test_the_requests_zone_is_used(policy: CallingPolicy, clock: FixedClock) -> None:
    # 06:30 in Bogotá is 07:30 in New York once New York is on summer time (from 8 March).
    clock.set(bogota("2026-03-10 06:30"))
    assert isinstance(await policy.check(NUMBER, JOB, claimant="a:1"), WaitUntil)
    in_new_york = JobPolicy(timezone="America/New_York")
    decision = await policy.check(NUMBER, in_new_york, claimant="b:1")
    assert isinstance(decision, Open)
    assert decision.zone == "America/New_York"


async def test_a_us_number_on_the_day_clocks_change(
    policy: CallingPolicy, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 3, 7, 23, 0, tzinfo=ZoneInfo("America/New_York")))  # Saturday
    decision = await policy.check("+12125551234", JOB, claimant="a:1")
    # Sunday is closed; Monday 07:00 is EDT (UTC-4) after Sunday's change.
    assert decision == WaitUntil(
        datetime(2026, 3, 9, 11, 0, tzinfo=UTC), "outside_calling_window", "America/New_York"
    )


async def test_a_job_window_overrides(policy: CallingPolicy, clock: FixedClock) -> None:
    clock.set(bogota("2026-03-08 10:00"))  # Sunday
    sundays = JobPolicy(calling_windows="sun 09:00-12:00")
    # Holidays and the cap still apply (co-ley-2300 globally); Sunday 8 March is no holiday.
    assert isinstance(await policy.check(NUMBER, sundays, claimant="a:1"), Open)


def test_opening_for_a_retry_outside_the_window(policy: CallingPolicy) -> None:
    retry_at = bogota("2026-03-06 18:59:30") + timedelta(seconds=60)
    assert policy.opening(NUMBER, JOB, retry_at) == WaitUntil(
        bogota("2026-03-07 08:00"), "outside_calling_window", "America/Bogota"
    )
    assert policy.opening(NUMBER, JOB, bogota("2026-03-06 18:59")) is None


@pytest.mark.settings(CALLING_WINDOWS="")
async def test_without_rules_nothing_waits(policy: CallingPolicy, clock: FixedClock) -> None:
    clock.set(bogota("2026-03-08 03:00"))
    for n in range(3):
        assert await policy.check(NUMBER, JOB, claimant=f"a:{n}") == Open("America/Bogota")
    assert policy.opening(NUMBER, JOB) is None


def test_clocks(tmp_path: Any, redis_client: Any) -> None:
    fixed = FixedClock(bogota("2026-03-06 10:00"))
    fixed.advance(timedelta(hours=1))
    assert fixed.now() == datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    assert fixed.now().tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 3, 6))
    shifted = OffsetClock(bogota("2026-03-08 10:00"))
    first = shifted.now()
    assert abs(first - bogota("2026-03-08 10:00")) < timedelta(seconds=5)
    assert shifted.now() >= first
    assert abs(SystemClock().now() - datetime.now(UTC)) < timedelta(seconds=5)
    settings = make_settings(tmp_path)
    policy = build_calling_policy(settings, redis_client, keys_for(settings))
    assert isinstance(policy.clock, SystemClock)
