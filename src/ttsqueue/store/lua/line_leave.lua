-- A job gives up its line or its place in line (call over, canceled while waiting).
-- KEYS[1] lines, KEYS[2] high waiters, KEYS[3] normal waiters, KEYS[4] waiters' liveness;
-- ARGV[1] lease id.
for i = 1, 4 do
  redis.call('ZREM', KEYS[i], ARGV[1])
end
return 1
