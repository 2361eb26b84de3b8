-- Remove one number from the do-not-call list, with its audit entry.
-- KEYS[1] list, KEYS[2] meta, KEYS[3] audit; ARGV[1] number, ARGV[2] audit JSON, ARGV[3] cap
-- Returns 1 if it was listed, 0 otherwise (nothing written).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'entry', ARGV[2])
return 1
