-- uses: cache_pin, cache_evict
-- Register (or re-register) an audio cache entry whose files were just written.
-- KEYS[1] lru zset, KEYS[2] sizes hash, KEYS[3] files hash, KEYS[4] stats hash,
-- KEYS[5] the entry's inuse zset
-- ARGV[1] key, ARGV[2] size, ARGV[3] identity, ARGV[4] now ms, ARGV[5] lease ('' for none),
-- ARGV[6] lease expiry ms, ARGV[7] max bytes, ARGV[8] inuse key prefix
-- Returns the victims of eviction: {key, file identity, ...}.
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
