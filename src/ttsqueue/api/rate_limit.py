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

WINDOW_MS = 60_000

# KEYS[1] window zset, KEYS[2] total, KEYS[3] sequence
# ARGV[1] limit, ARGV[2] cost, ARGV[3] window ms
# Returns 0 (charged), the ms to wait, or -1 (the cost exceeds the limit on its own).
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
if cost > limit then
  return -1
end
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
for _, member in ipairs(expired) do
  total = total - tonumber(string.match(member, ':(%d+)$'))
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
end
if total < 0 then total = 0 end
if total + cost > limit then
  redis.call('SET', KEYS[2], total, 'PX', window)
  -- The oldest requests leave the window first: wait until enough weight has left.
  local needed = total + cost - limit
  local rows = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #rows, 2 do
    needed = needed - tonumber(string.match(rows[i], ':(%d+)$'))
    if needed <= 0 then
      return math.max(1, tonumber(rows[i + 1]) + window - now)
    end
  end
  return window
end
local seq = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], window)
redis.call('ZADD', KEYS[1], now, now .. '-' .. seq .. ':' .. cost)
redis.call('PEXPIRE', KEYS[1], window)
redis.call('SET', KEYS[2], total + cost, 'PX', window)
return 0
"""

# Charged, or: milliseconds to wait; TOO_LARGE: this cost never fits in a minute.
TOO_LARGE = -1


class RateLimiter:
    def __init__(self, per_minute: int, prefix: str) -> None:
        self.per_minute = per_minute
        self.prefix = prefix

    def _keys(self, api_key: str) -> list[str]:
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:32]
        base = f"{self.prefix}ratelimit:{digest}"
        return [base, f"{base}:total", f"{base}:seq"]

    async def charge(self, client: aioredis.Redis, api_key: str, cost: int = 1) -> int:
        """0 when `cost` requests were counted for `api_key`; otherwise the milliseconds until
        they would fit, or TOO_LARGE. Raises Redis errors (the caller decides)."""
        reply = await client.eval(
            _SLIDING_WINDOW, 3, *self._keys(api_key), self.per_minute, cost, WINDOW_MS
        )
        return int(reply)
