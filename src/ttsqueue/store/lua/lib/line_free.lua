-- free_line(lines, lease, hold_ms): a call's line given up. At once, or counted `hold_ms` more
-- when the dialer learns a call's end before Asterisk has torn its channel down. LT: a hold
-- never lengthens a lease, nor brings an expired one back.
local function free_line(lines, lease, hold_ms)
  if hold_ms > 0 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZADD', lines, 'XX', 'LT', now + hold_ms, lease)
  else
    redis.call('ZREM', lines, lease)
  end
end
