-- Claim one contact of a number's local day, if the number is not on the do-not-call list and
-- the daily cap (MAX_CONTACTS_PER_DAY) allows: both questions in one round trip, atomically.
-- KEYS[1] the number's contacts that day (zset: claimant -> lease expiry ms, or +inf answered)
-- KEYS[2] the do-not-call list (zset of E.164 numbers)
-- ARGV[1] claimant (job:attempt), ARGV[2] cap, ARGV[3] lease ms, ARGV[4] key TTL seconds,
-- ARGV[5] the number (E.164)
-- Returns {1, contacts} granted, {0, contacts} over the cap, {-1, 0} listed (nothing claimed).
-- Unanswered calls give their claim back (contact_settle); a claim whose worker died expires
-- with its lease. Time is the Redis server's, shared by every worker.
if redis.call('ZSCORE', KEYS[2], ARGV[5]) then
  return {-1, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  -- The same attempt again (a redelivered message): it keeps its claim.
  return {1, redis.call('ZCARD', KEYS[1])}
end
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[2]) then
  return {0, count}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, count + 1}
