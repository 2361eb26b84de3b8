-- uses: cache_pin
-- Lease an audio cache entry during a call.
-- KEYS[1] sizes hash, KEYS[2] the entry's inuse zset; ARGV[1] key, ARGV[2] lease,
-- ARGV[3] lease expiry ms
-- Returns 1 when the entry is indexed (the lease is recorded either way).
pin(KEYS[2], ARGV[2], ARGV[3])
return redis.call('HEXISTS', KEYS[1], ARGV[1])
