-- Extends a call's line lease, or takes it back if it expired meanwhile and a line is free.
-- KEYS[1] lines (lease id -> expiry ms); ARGV[1] lease id, ARGV[2] lease ms, ARGV[3] max calls.
-- Returns 1 when held, 0 when lost.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(newest[2])) + 1000)
return 1
