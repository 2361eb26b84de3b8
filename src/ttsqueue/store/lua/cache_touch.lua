-- uses: cache_pin
-- Use an audio cache entry: refresh its place in the LRU, count a hit, lease it.
-- KEYS[1] lru zset, KEYS[2] sizes hash, KEYS[3] stats hash, KEYS[4] the entry's inuse zset
-- ARGV[1] key, ARGV[2] now ms, ARGV[3] lease ('' for none), ARGV[4] lease expiry ms
-- Returns 1 and counts a hit when the entry is indexed, else 0.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'hits', 1)
pin(KEYS[4], ARGV[3], ARGV[4])
return 1
