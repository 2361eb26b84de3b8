-- A trunk line for one call, granted in priority order across every worker process.
-- KEYS[1] lines (lease id -> expiry ms), KEYS[2] rate (origination -> time ms),
-- KEYS[3] high waiters (id -> arrival), KEYS[4] normal waiters (id -> arrival),
-- KEYS[5] waiters' liveness (id -> expiry ms), KEYS[6] arrival counter,
-- KEYS[7] high grants in a row while a normal job waited
-- ARGV[1] lease id, ARGV[2] lease ms, ARGV[3] max calls, ARGV[4] ms between originations,
-- ARGV[5] "high" or "normal", ARGV[6] waiter ttl ms, ARGV[7] longest high streak
-- Returns {1, 0, 0} when the lease is held; else {0, ms to wait for the rate, 0} or
-- {0, 0, lines that must free before this waiter's turn}.
--
-- Order: high waiters by arrival, then normal waiters by arrival; but once ARGV[7] high
-- jobs in a row took a line while a normal job waited, the oldest normal waiter goes first.
-- Times come from the server clock (TIME), the one clock every worker shares.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local id = ARGV[1]
local lease_ms = tonumber(ARGV[2])
local ttl = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)

local function expire_lines()
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if newest[2] then
    redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(newest[2])) + 1000)
  end
end

local function leave()
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
end

if redis.call('ZSCORE', KEYS[1], id) then
  redis.call('ZADD', KEYS[1], now + lease_ms, id)
  expire_lines()
  leave()
  return {1, 0, 0}
end

-- Waiters whose worker stopped asking (crashed, or gave up) lose their place.
local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
for _, w in ipairs(gone) do
  redis.call('ZREM', KEYS[3], w)
  redis.call('ZREM', KEYS[4], w)
end
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
end

local high = ARGV[5] == 'high'
local mine = KEYS[4]
if high then mine = KEYS[3] end
if not redis.call('ZSCORE', mine, id) then
  redis.call('ZADD', mine, redis.call('INCR', KEYS[6]), id)
end
redis.call('ZADD', KEYS[5], now + ttl, id)
-- Everything about waiting lives only while somebody waits and asks.
for i = 3, 7 do
  redis.call('PEXPIRE', KEYS[i], 2 * ttl)
end

local n_high = redis.call('ZCARD', KEYS[3])
local n_normal = redis.call('ZCARD', KEYS[4])
local streak = tonumber(redis.call('GET', KEYS[7]) or '0')
local normal_first = n_high > 0 and n_normal > 0 and streak >= tonumber(ARGV[7])
local rank
if high then
  rank = redis.call('ZRANK', mine, id)
  if normal_first then rank = rank + 1 end
else
  local r = redis.call('ZRANK', mine, id)
  if normal_first and r == 0 then rank = 0 else rank = n_high + r end
end

local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
if rank >= free then
  return {0, 0, rank - math.max(free, 0) + 1}
end
local interval = tonumber(ARGV[4])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] and now < tonumber(last[2]) + interval then
  return {0, math.ceil(tonumber(last[2]) + interval - now), 0}
end

redis.call('ZADD', KEYS[1], now + lease_ms, id)
local keep = math.ceil(math.max(10000, 2 * interval))
redis.call('ZADD', KEYS[2], now, id .. '@' .. t[1] .. '.' .. t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep)
redis.call('PEXPIRE', KEYS[2], keep)
leave()
if high and n_normal > 0 then
  redis.call('INCR', KEYS[7])
else
  redis.call('SET', KEYS[7], 0)
end
redis.call('PEXPIRE', KEYS[7], 2 * ttl)
expire_lines()
return {1, 0, 0}
