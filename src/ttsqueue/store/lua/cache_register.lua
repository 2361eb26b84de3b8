-- uses: cache_pin, cache_evict
-- Register (or re-register) an audio cache entry whose files were just written.
-- KEYS[1] lru zset, KEYS[2] sizes hash, KEYS[3] files hash, KEYS[4] stats hash,
-- KEYS[5] the entry's inuse zset, KEYS[6] the entry's write lock
-- ARGV[1] key, ARGV[2] size, ARGV[3] identity, ARGV[4] now ms, ARGV[5] lease ('' for none),
-- ARGV[6] lease expiry ms, ARGV[7] max bytes, ARGV[8] inuse key prefix, ARGV[9] lock token
-- The caller renamed the files into place holding the write lock, so the identity it brings
-- is the file on disk; the lock is released here.
-- Returns the victims of eviction: {key, file identity, ...}.
local key, size, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local old = tonumber(redis.call('HGET', KEYS[2], key) or '0')
redis.call('HSET', KEYS[2], key, size)
redis.call('HSET', KEYS[3], key, ARGV[3])
if redis.call('GET', KEYS[6]) == ARGV[9] then redis.call('DEL', KEYS[6]) end
redis.call('ZADD', KEYS[1], now, key)
redis.call('HINCRBY', KEYS[4], 'bytes', size - old)
pin(KEYS[5], ARGV[5], ARGV[6])
return evict(KEYS[1], KEYS[2], KEYS[3], KEYS[4], tonumber(ARGV[7]), now, ARGV[8], key)
