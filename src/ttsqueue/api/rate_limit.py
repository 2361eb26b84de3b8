"""The per-key rate limit (SPEC §2.8): a key gets RATE_LIMIT_PER_MINUTE requests in any
minute, a burst of that size included; a batch counts as its number of items.

An exact sliding window, shared by every API process through Redis: each accepted request is
a member of the key's sorted set, scored by its time and carrying its weight (1, or a batch's
item count), with the window's total kept beside it. A request is refused when it would take
the total over the limit; the answer says how long until enough of the window has expired.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import load_script

WINDOW_MS = 60_000


# Charged, or: milliseconds to wait; TOO_LARGE: this cost never fits in a minute.
TOO_LARGE = -1


class RateLimiter:
    def __init__(self, per_minute: int, keys: Keys) -> None:
        self.per_minute = per_minute
        self.keys = keys
        self._script: AsyncScript | None = None

    def _keys(self, api_key: str) -> list[str]:
        base = self.keys.rate_limit(hashlib.sha256(api_key.encode()).hexdigest()[:32])
        return [base, f"{base}:total", f"{base}:seq"]

    async def charge(self, client: aioredis.Redis, api_key: str, cost: int = 1) -> int:
        """0 when `cost` requests were counted for `api_key`; otherwise the milliseconds until
        they would fit, or TOO_LARGE. Raises Redis errors (the caller decides)."""
        if self._script is None:
            self._script = load_script(client, "rate_limit")
        reply = await self._script(
            keys=self._keys(api_key), args=[self.per_minute, cost, WINDOW_MS], client=client
        )
        return int(reply)
