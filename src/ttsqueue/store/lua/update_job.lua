-- Set fields of an existing job without changing its status (never recreates an expired one).
-- KEYS[1] job hash; ARGV field/value pairs. Returns 1 when the job exists.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[1], unpack(ARGV))
return 1
