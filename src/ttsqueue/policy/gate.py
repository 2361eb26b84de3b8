"""The one question a worker asks just before dialing: may this number be called now?

    decision = await policy.check(e164, job_policy, claimant=f"{job_id}:{attempt}")
    Open(claim)           dial; when the call ends: await policy.settle(decision, answered=...)
    WaitUntil(at, reason) do not dial; hold the job as `scheduled` until `at` (UTC)
    Suppressed(reason)    never dial: the job ends `failed`, call.outcome `suppressed`

Checked in this order: the do-not-call list (listed later than submission: suppressed), the
calling window and holidays in the callee's zone (wait for the next opening), the daily
contact cap (wait for the next local day's first opening). `opening()` answers the window
question alone, without I/O, for submission (`scheduled_for`) and for telephony retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.domain import Job
from ttsqueue.policy.clock import Clock, SystemClock
from ttsqueue.policy.opening import closed_reason, local_date, next_local_day, next_opening
from ttsqueue.policy.rules import CallingRules, JobPolicy, rules_for_job
from ttsqueue.policy.zones import ZoneChoice, callee_zone
from ttsqueue.store.contacts import KEY_SLACK_S, ContactClaim, ContactLedger
from ttsqueue.store.dnc import DncList
from ttsqueue.store.keys import Keys

# A contact claim outlives the longest call (ring + talk) by this much before it expires.
CLAIM_MARGIN_S = 60


@dataclass(frozen=True, slots=True)
class Open:
    """Dial now. `claim` (with a contact cap) must be settled when the call ends."""

    zone: str
    claim: ContactClaim | None = None
    # `check(defer_listed=True)`: the do-not-call list is still to be asked, by the caller's
    # own step (the worker's move to `calling` refuses a listed number in the same script).
    listed_unchecked: bool = False


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Do not dial before `at` (UTC). reason: outside_calling_window, holiday, contact_cap."""

    at: datetime
    reason: str
    zone: str


@dataclass(frozen=True, slots=True)
class Suppressed:
    """Never dial this job."""

    reason: str = "do_not_call"


Decision = Open | WaitUntil | Suppressed


class CallingPolicy:
    def __init__(
        self,
        rules: CallingRules,
        dnc: DncList,
        ledger: ContactLedger,
        *,
        default_region: str,
        clock: Clock | None = None,
    ) -> None:
        self.rules = rules
        self.dnc = dnc
        self.ledger = ledger
        self.clock = clock or SystemClock()
        self._region = default_region

    def zone_for(self, e164: str, job: JobPolicy) -> ZoneChoice:
        return callee_zone(e164, job.timezone, self._region)

    def opening(self, e164: str, job: JobPolicy, at: datetime | None = None) -> WaitUntil | None:
        """None when `at` (default now) is inside the job's calling window; otherwise when
        the window next opens. Pure: no do-not-call or cap check."""
        at = at or self.clock.now()
        rules = rules_for_job(self.rules, job)
        if rules.hours.unrestricted:
            return None
        zone = self.zone_for(e164, job).zone
        reason = closed_reason(at, rules.hours, zone)
        if reason is None:
            return None
        return WaitUntil(next_opening(at, rules.hours, zone), reason, zone.key)

    async def check(
        self,
        e164: str,
        job: JobPolicy,
        *,
        claimant: str,
        now: datetime | None = None,
        defer_listed: bool = False,
    ) -> Decision:
        """The decision for dialing `e164` now; takes a contact claim when a cap applies.
        One Redis round trip: the do-not-call lookup, or (window open, cap on) the claim
        script that also refuses listed numbers. With `defer_listed`, an open window without
        a cap costs none: `Open(listed_unchecked=True)`, the caller asks the list itself."""
        now = now or self.clock.now()
        if defer_listed and (open_now := self.open_without_cap(e164, job, now)) is not None:
            return open_now
        rules = rules_for_job(self.rules, job)
        zone = self.zone_for(e164, job).zone
        wait = self.opening(e164, job, now)
        if wait is not None or rules.max_contacts_per_day < 1:
            if await self.dnc.is_listed(e164):
                return Suppressed()
            return wait or Open(zone.key)
        tomorrow = next_local_day(now, zone)
        result = await self.ledger.claim(
            e164,
            local_date(now, zone),
            claimant,
            rules.max_contacts_per_day,
            (tomorrow - now).total_seconds(),
        )
        if result.listed:
            return Suppressed()
        if not result.granted:
            return WaitUntil(next_opening(tomorrow, rules.hours, zone), "contact_cap", zone.key)
        return Open(zone.key, result.claim)

    def open_without_cap(
        self, e164: str, job: JobPolicy, now: datetime | None = None
    ) -> Open | None:
        """`check(defer_listed=True)`'s answer when it needs nothing from Redis (the window is
        open now and no contact cap applies): `Open(listed_unchecked=True)`; else None."""
        now = now or self.clock.now()
        if rules_for_job(self.rules, job).max_contacts_per_day >= 1:
            return None
        if self.opening(e164, job, now) is not None:
            return None
        return Open(self.zone_for(e164, job).zone.key, listed_unchecked=True)

    def _offset(self) -> timedelta:
        """How far the policy's clock is from the system clock (zero in production)."""
        return self.clock.now() - datetime.now(UTC)

    def to_system_time(self, at: datetime) -> datetime:
        """An instant of the policy's clock as the system clock will show it: what the delay
        queues, `scheduled_for` and every other timestamp are measured in."""
        return at - self._offset()

    def hold_until(
        self, e164: str, job: JobPolicy, earliest: datetime | None = None
    ) -> WaitUntil | None:
        """`opening()` for a job that may start at `earliest` (system time, default now):
        None when the window is open then, else the next opening in system time."""
        offset = self._offset()
        now = datetime.now(UTC)
        start = max(earliest, now) if earliest is not None else now
        wait = self.opening(e164, job, start + offset)
        if wait is None:
            return None
        return WaitUntil(wait.at - offset, wait.reason, wait.zone)

    async def settle_placed(
        self, e164: str, job: JobPolicy, *, claimant: str, placed_at: datetime, answered: bool
    ) -> None:
        """Settle the claim of a call an earlier delivery placed (its worker was lost before
        the call ended): the same key and claimant that delivery's check used."""
        rules = rules_for_job(self.rules, job)
        if rules.max_contacts_per_day < 1:
            return
        zone = self.zone_for(e164, job).zone
        at = placed_at + self._offset()
        left = (next_local_day(at, zone) - at).total_seconds()
        claim = ContactClaim(
            e164, local_date(at, zone), claimant, int(max(left, 0) + 2 * KEY_SLACK_S)
        )
        await self.ledger.settle(claim, answered=answered)

    async def settle(self, decision: Open, *, answered: bool) -> None:
        """The call of an `Open` decision ended: count the contact if it was answered."""
        if decision.claim is not None:
            await self.ledger.settle(decision.claim, answered=answered)


def policy_of(job: Job) -> JobPolicy:
    """The policy fields a job was accepted with."""
    return JobPolicy(job.calling_windows, job.timezone, job.ignore_calling_windows)


def claim_lease_s(settings: Settings) -> float:
    return float(settings.CALL_RING_TIMEOUT + settings.CALL_MAX_DURATION + CLAIM_MARGIN_S)


def build_calling_policy(
    settings: Settings, redis: aioredis.Redis, keys: Keys, clock: Clock | None = None
) -> CallingPolicy:
    return CallingPolicy(
        settings.calling_rules(),
        DncList(redis, keys, clock),
        ContactLedger(redis, keys, claim_lease_s(settings)),
        default_region=settings.DEFAULT_REGION,
        clock=clock,
    )
