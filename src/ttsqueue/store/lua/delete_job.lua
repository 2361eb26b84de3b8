-- Remove a job that was never accepted (its publish failed): record, history, indexes,
-- and the idempotency key that pointed to it; mark it refused, so that a message of it that
-- reached RabbitMQ unconfirmed never brings it back (create_job.lua reads the mark).
-- KEYS[1] job hash, KEYS[2] history, KEYS[3] index, KEYS[4] idempotency key or a dummy,
-- KEYS[5] refused mark
-- ARGV[1] key prefix, ARGV[2] job id, ARGV[3] "1" to delete the idempotency key,
-- ARGV[4] seconds the refused mark is kept (0: no mark, for a job no message was ever sent of)
local status = redis.call("HGET", KEYS[1], "status")
local priority = redis.call("HGET", KEYS[1], "priority")
redis.call("DEL", KEYS[1], KEYS[2])
redis.call("ZREM", KEYS[3], ARGV[2])
if status then
  redis.call("ZREM", ARGV[1] .. "jobs:status:" .. status, ARGV[2])
  if priority then
    redis.call("ZREM", ARGV[1] .. "jobs:status:" .. status .. ":" .. priority, ARGV[2])
  end
end
redis.call("ZREM", ARGV[1] .. "jobs:expiry", ARGV[2])
redis.call("ZREM", ARGV[1] .. "jobs:unconfirmed", ARGV[2])
if priority then
  redis.call("ZREM", ARGV[1] .. "jobs:priority:" .. priority, ARGV[2])
end
if ARGV[3] == "1" then
  redis.call("DEL", KEYS[4])
end
if tonumber(ARGV[4]) > 0 then
  redis.call("SET", KEYS[5], "1", "EX", tonumber(ARGV[4]))
end
return status and 1 or 0
