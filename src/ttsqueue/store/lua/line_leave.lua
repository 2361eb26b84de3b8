-- uses: line_free
-- A job gives up its line or its place in line (call over, canceled while waiting).
-- KEYS[1] high waiters, KEYS[2] normal waiters, KEYS[3] waiters' liveness,
-- KEYS[4] waiters' candidate servers, KEYS[5..] each server's lines; ARGV[1] lease id,
-- ARGV[2] ms the line stays counted after a call (0: freed at once).
local hold_ms = tonumber(ARGV[2] or '0')
for i = 1, #KEYS do
  if i == 4 then
    redis.call('HDEL', KEYS[i], ARGV[1])
  elseif i >= 5 then
    free_line(KEYS[i], ARGV[1], hold_ms)
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return 1
