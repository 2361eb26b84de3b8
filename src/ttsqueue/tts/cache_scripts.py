"""Lua for the audio cache index, so that workers in different processes agree on it.

Index: `lru` (zset key -> last use ms), `sizes` (hash key -> bytes), `files` (hash key ->
identity of its files), `stats` (hash hits, misses, bytes) and per-entry `inuse` zsets of
leases scored by expiry ms.
"""

from __future__ import annotations

_PIN = """
local function pin(inuse, lease, expiry)
  if lease == '' then return end
  redis.call('ZADD', inuse, expiry, lease)
  local current = redis.call('PEXPIRETIME', inuse)
  if current < tonumber(expiry) then redis.call('PEXPIREAT', inuse, expiry) end
end
"""

# Removes least recently used entries until the total fits, skipping `keep` and entries with
# a live lease. Returns {key, file identity, ...} of the victims: the caller deletes their
# files, but only files that still have that identity.
_EVICT = """
local function evict(lru, sizes, files, stats, max_bytes, now, inuse_prefix, keep)
  local total = tonumber(redis.call('HGET', stats, 'bytes') or '0')
  local victims = {}
  local skipped = 0
  while total > max_bytes do
    local batch = redis.call('ZRANGE', lru, skipped, skipped + 63)
    if #batch == 0 then break end
    for _, k in ipairs(batch) do
      if total <= max_bytes then break end
      if k == keep or redis.call('ZCOUNT', inuse_prefix .. k, '(' .. now, '+inf') > 0 then
        skipped = skipped + 1
      else
        total = total - tonumber(redis.call('HGET', sizes, k) or '0')
        victims[#victims + 1] = k
        victims[#victims + 1] = redis.call('HGET', files, k) or ''
        redis.call('ZREM', lru, k)
        redis.call('HDEL', sizes, k)
        redis.call('HDEL', files, k)
      end
    end
  end
  redis.call('HSET', stats, 'bytes', total)
  return victims
end
"""

# KEYS: lru, sizes, files, stats, inuse(key)
# ARGV: key, size, identity, now_ms, lease ('' for none), lease_expiry_ms, max_bytes,
#       inuse_prefix
# Registers (or re-registers) an entry whose files were just written; returns the victims.
REGISTER = (
    _PIN
    + _EVICT
    + """
local key, size, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local old = tonumber(redis.call('HGET', KEYS[2], key) or '0')
redis.call('HSET', KEYS[2], key, size)
-- Identities start with the zero-padded mtime: when writers of the same entry register out
-- of order, the index keeps the newest write, which is the file on disk.
local current = redis.call('HGET', KEYS[3], key)
if not current or current < ARGV[3] then redis.call('HSET', KEYS[3], key, ARGV[3]) end
redis.call('ZADD', KEYS[1], now, key)
redis.call('HINCRBY', KEYS[4], 'bytes', size - old)
pin(KEYS[5], ARGV[5], ARGV[6])
return evict(KEYS[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[7]), now, ARGV[8], key)
"""
)

# KEYS: lru, sizes, stats, inuse(key)   ARGV: key, now_ms, lease ('' for none), lease_expiry_ms
# Returns 1 and counts a hit when the entry is indexed, else 0.
TOUCH = (
    _PIN
    + """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'hits', 1)
pin(KEYS[4], ARGV[3], ARGV[4])
return 1
"""
)

# KEYS: sizes, inuse(key)   ARGV: key, lease, lease_expiry_ms
# Returns 1 when the entry is indexed (the lease is recorded either way).
PIN = (
    _PIN
    + """
pin(KEYS[2], ARGV[2], ARGV[3])
return redis.call('HEXISTS', KEYS[1], ARGV[1])
"""
)
