-- Record the release of a campaign row, only while the campaign is running.
-- KEYS[1] campaign hash, KEYS[2] set of the campaign's jobs in flight
-- ARGV[1] the row's index (the release cursor it expects), ARGV[2] job id,
-- ARGV[3] next release time (epoch ms), ARGV[4] TTL seconds of the in-flight set
-- Returns 1 when recorded (the job may be sent), 0 when the campaign is no longer running,
-- -1 when the row was already released by someone else (either way: do not send the job).
if redis.call("HGET", KEYS[1], "state") ~= "running" then
  return 0
end
if tonumber(redis.call("HGET", KEYS[1], "released") or "0") ~= tonumber(ARGV[1]) then
  return -1
end
redis.call("SADD", KEYS[2], ARGV[2])
redis.call("EXPIRE", KEYS[2], ARGV[4])
redis.call("HINCRBY", KEYS[1], "released", 1)
redis.call("HSET", KEYS[1], "next_release_ms", ARGV[3])
return 1
