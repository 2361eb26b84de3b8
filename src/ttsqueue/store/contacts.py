"""The daily contact cap (MAX_CONTACTS_PER_DAY), shared by every worker through Redis.

One sorted set per number and local day. Before dialing, a worker claims a contact: the
script refuses a number on the do-not-call list, counts that day's answered contacts plus the
calls under way, and grants the claim only below the cap, so two workers can never both take
the last contact (and the worker learns both answers in one round trip). When the call ends
the claim is settled: answered, it counts for the rest of the day; not answered, it is given
back. A claim whose worker died expires with its lease. The key outlives the local day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import redis.asyncio as aioredis

from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import load_script

# A day's key lives this long after the local day ends (clocks apart, late settlements).
KEY_SLACK_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class ContactClaim:
    """What a worker holds between its claim and the end of its call."""

    e164: str
    local_day: date
    # Who holds it: one attempt of one job (`<job_id>:<attempt>`).
    claimant: str
    ttl_s: int


@dataclass(frozen=True, slots=True)
class ClaimResult:
    granted: bool
    # Contacts counted that day, this claim included when granted.
    contacts: int
    claim: ContactClaim
    # The number is on the do-not-call list: nothing was claimed.
    listed: bool = False


class ContactLedger:
    def __init__(self, redis: aioredis.Redis, keys: Keys, lease_s: float) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self._redis = redis
        self._keys = keys
        self._lease_ms = int(lease_s * 1000)
        self._claim = load_script(redis, "contact_claim")
        self._settle = load_script(redis, "contact_settle")

    def _key(self, e164: str, local_day: date) -> str:
        return self._keys.contacts(e164, local_day.isoformat())

    async def claim(
        self, e164: str, local_day: date, claimant: str, cap: int, seconds_left_in_day: float
    ) -> ClaimResult:
        """Claim one of `cap` contacts of `e164` on its `local_day` (refused when listed)."""
        if cap < 1:
            raise ValueError("cap must be at least 1 (0 means no cap: do not claim)")
        ttl_s = int(max(seconds_left_in_day, 0) + KEY_SLACK_S + self._lease_ms / 1000)
        claim = ContactClaim(e164, local_day, claimant, ttl_s)
        verdict, contacts = await self._claim(
            keys=[self._key(e164, local_day), self._keys.dnc],
            args=[claimant, cap, self._lease_ms, ttl_s, e164],
        )
        verdict = int(verdict)
        return ClaimResult(verdict == 1, int(contacts), claim, listed=verdict == -1)

    async def settle(self, claim: ContactClaim, *, answered: bool) -> None:
        """The call ended: count it (answered) or give the claim back."""
        await self._settle(
            keys=[self._key(claim.e164, claim.local_day)],
            args=[claim.claimant, "1" if answered else "0", claim.ttl_s],
        )

    async def contacts(self, e164: str, local_day: date) -> int:
        """Answered contacts that day plus claims still under way (expired leases left out)."""
        seconds, _micro = await self._redis.time()
        return int(await self._redis.zcount(self._key(e164, local_day), seconds * 1000, "+inf"))
