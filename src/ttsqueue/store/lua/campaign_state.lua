-- Compare-and-set of a campaign's state.
-- KEYS[1] campaign hash, KEYS[2] set of active campaigns
-- ARGV[1] campaign id, ARGV[2] allowed current states (comma separated), ARGV[3] target state,
-- ARGV[4] ISO time of the change
-- A campaign that starts running is active (a pacer works on it); `started_at` is its first
-- start, `finished_at` its end (completed or canceled).
-- Returns {1, previous state} when applied, {0, current state or ""} when refused.
local current = redis.call("HGET", KEYS[1], "state")
if not current then
  return {0, ""}
end
local allowed = false
for s in string.gmatch(ARGV[2], "[^,]+") do
  if s == current then allowed = true end
end
if not allowed then
  return {0, current}
end
redis.call("HSET", KEYS[1], "state", ARGV[3])
if ARGV[3] == "running" then
  redis.call("SADD", KEYS[2], ARGV[1])
  if redis.call("HEXISTS", KEYS[1], "started_at") == 0 then
    redis.call("HSET", KEYS[1], "started_at", ARGV[4])
  end
elseif ARGV[3] == "completed" or ARGV[3] == "canceled" then
  redis.call("HSET", KEYS[1], "finished_at", ARGV[4])
end
return {1, current}
