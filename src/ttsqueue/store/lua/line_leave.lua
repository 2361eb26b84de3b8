-- A job gives up its line or its place in line (call over, canceled while waiting).
-- KEYS[1] high waiters, KEYS[2] normal waiters, KEYS[3] waiters' liveness,
-- KEYS[4] waiters' candidate servers, KEYS[5..] each server's lines; ARGV[1] lease id.
for i = 1, #KEYS do
  if i == 4 then
    redis.call('HDEL', KEYS[i], ARGV[1])
  else
    redis.call('ZREM', KEYS[i], ARGV[1])
  end
end
return 1
