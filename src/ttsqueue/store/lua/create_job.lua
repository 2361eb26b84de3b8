-- Create a job atomically: record, history, indexes, idempotency key, event.
-- KEYS[1] job hash, KEYS[2] history list, KEYS[3] index zset, KEYS[4] status zset,
-- KEYS[5] priority zset, KEYS[6] idempotency key (ignored when ARGV[5] == ""),
-- KEYS[7] status+priority zset, KEYS[8] expiry zset, KEYS[9] refused mark (delete_job.lua),
-- KEYS[10] do-not-call zset
-- ARGV[1] job id, ARGV[2] created ms, ARGV[3] ttl seconds, ARGV[4] history entry json,
-- ARGV[5] idempotency value ("" = none), ARGV[6] idempotency ttl seconds,
-- ARGV[7] events channel, ARGV[8] event json, ARGV[9] key prefix, ARGV[10] priority,
-- ARGV[11] the number to refuse when it is on the do-not-call list ("" = no check),
-- ARGV[12..] field/value pairs
-- The job also enters the unconfirmed set (<prefix>jobs:unconfirmed) until its first message
-- is confirmed (confirm_job.lua); the idempotency value says "pending" until then.
-- Returns {"created"} | {"duplicate", <stored idempotency value>} | {"exists"} | {"refused"}
-- | {"listed"} ("refused": the job's submission was refused; a record rebuilt from its message
-- would bring it back; "listed": the number is on the do-not-call list, nothing written)
if ARGV[11] ~= "" and redis.call("ZSCORE", KEYS[10], ARGV[11]) then
  return {"listed"}
end
if ARGV[5] ~= "" then
  local existing = redis.call("GET", KEYS[6])
  if existing then
    return {"duplicate", existing}
  end
end
if redis.call("EXISTS", KEYS[1]) == 1 then
  return {"exists"}
end
if redis.call("EXISTS", KEYS[9]) == 1 then
  return {"refused"}
end
local id = ARGV[1]
local created = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local prefix = ARGV[9]
local fields = {}
for i = 12, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call("HSET", KEYS[1], unpack(fields))
redis.call("EXPIRE", KEYS[1], ttl)
redis.call("RPUSH", KEYS[2], ARGV[4])
redis.call("EXPIRE", KEYS[2], ttl)
redis.call("ZADD", KEYS[3], created, id)
redis.call("ZADD", KEYS[4], created, id)
redis.call("ZADD", KEYS[5], created, id)
redis.call("ZADD", KEYS[7], created, id)
redis.call("ZADD", KEYS[8], created + ttl * 1000, id)
redis.call("ZADD", prefix .. "jobs:unconfirmed", created, id)
if ARGV[5] ~= "" then
  redis.call("SET", KEYS[6], ARGV[5], "EX", tonumber(ARGV[6]))
end

-- Forget the index entries of records that have expired, so counts stay exact. Each id is
-- dropped once, found through its expiry time; at most one pass a second does the work.
if redis.call("SET", prefix .. "jobs:prune", "1", "NX", "PX", 1000) then
  local statuses = {"scheduled", "queued", "processing", "calling", "retrying",
                    "completed", "failed", "canceled"}
  local expired = redis.call("ZRANGEBYSCORE", KEYS[8], "-inf", created, "LIMIT", 0, 1000)
  for _, old in ipairs(expired) do
    redis.call("ZREM", KEYS[3], old)
    for _, p in ipairs({"normal", "high"}) do
      redis.call("ZREM", prefix .. "jobs:priority:" .. p, old)
      for _, s in ipairs(statuses) do
        redis.call("ZREM", prefix .. "jobs:status:" .. s .. ":" .. p, old)
      end
    end
    for _, s in ipairs(statuses) do
      redis.call("ZREM", prefix .. "jobs:status:" .. s, old)
    end
    redis.call("ZREM", KEYS[8], old)
    redis.call("ZREM", prefix .. "jobs:unconfirmed", old)
  end
end
redis.call("HINCRBY", prefix .. "stats:submitted", ARGV[10], 1)
redis.call("PUBLISH", ARGV[7], ARGV[8])
return {"created"}
