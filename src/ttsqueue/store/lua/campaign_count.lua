-- A campaign's job finished: move it from in flight to the counts, exactly once.
-- KEYS[1] set of the campaign's jobs in flight, KEYS[2] hash of counts
-- ARGV[1] job id, ARGV[2] final status, ARGV[3] call outcome ("" for none),
-- ARGV[4] "1" when the callee confirmed, ARGV[5] TTL seconds of the counts
if redis.call("SREM", KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call("HINCRBY", KEYS[2], "status:" .. ARGV[2], 1)
if ARGV[3] ~= "" then
  redis.call("HINCRBY", KEYS[2], "outcome:" .. ARGV[3], 1)
end
if ARGV[4] == "1" then
  redis.call("HINCRBY", KEYS[2], "confirmed", 1)
end
redis.call("EXPIRE", KEYS[2], ARGV[5])
return 1
