"""Lua for the trunk guard: the slot and rate checks run atomically on the Redis server.

KEYS[1] is always the slots sorted set (lease id -> expiry, epoch ms). Times come from the
server's clock (TIME), the one clock every worker process shares.
"""

from __future__ import annotations

# Server time in epoch ms (fractional), then drop the leases that have expired.
PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""

# The slots key lives exactly as long as its longest lease.
EXPIRE_SLOTS = """
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then
  redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(newest[2])) + 1000)
end
"""

# KEYS[1] slots (lease id -> expiry ms), KEYS[2] rate (origination -> time ms)
# ARGV[1] lease id, ARGV[2] lease ms, ARGV[3] max calls, ARGV[4] ms between originations
# Returns {1, 0} when the lease is held, else {0, ms to wait} (0: no hint, poll).
ACQUIRE = (
    PRELUDE
    + """
local lease_ms = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[1])
"""
    + EXPIRE_SLOTS
    + """
  return {1, 0}
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return {0, 0}
end
local interval = tonumber(ARGV[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] and now < tonumber(last[2]) + interval then
  return {0, math.ceil(tonumber(last[2]) + interval - now)}
end
redis.call('ZADD', KEYS[1], now + lease_ms, ARGV[1])
local keep = math.ceil(math.max(10000, 2 * interval))
redis.call('ZADD', KEYS[2], now, ARGV[1] .. '@' .. t[1] .. '.' .. t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep)
redis.call('PEXPIRE', KEYS[2], keep)
"""
    + EXPIRE_SLOTS
    + """
return {1, 0}
"""
)

# KEYS[1] slots; ARGV[1] lease id, ARGV[2] lease ms, ARGV[3] max calls.
# Extends the lease, or takes it back if it expired meanwhile and a slot is free.
# Returns 1 when held, 0 when lost.
RENEW = (
    PRELUDE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
"""
    + EXPIRE_SLOTS
    + """
return 1
"""
)

ACTIVE = PRELUDE + "return redis.call('ZCARD', KEYS[1])\n"
