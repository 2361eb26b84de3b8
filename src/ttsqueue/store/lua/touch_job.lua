-- Mark a job as looked after now, its status unchanged (never recreates an expired record).
-- KEYS[1] job hash; ARGV[1] the time (ISO). Returns 1 when the job exists.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return 0
end
redis.call("HSET", KEYS[1], "updated_at", ARGV[1])
return 1
