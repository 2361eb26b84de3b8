-- The per-key sliding window of the API's rate limit.
-- KEYS[1] window zset, KEYS[2] total, KEYS[3] sequence
-- ARGV[1] limit, ARGV[2] cost, ARGV[3] window ms
-- Returns 0 (charged), the ms to wait, or -1 (the cost exceeds the limit on its own).
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
