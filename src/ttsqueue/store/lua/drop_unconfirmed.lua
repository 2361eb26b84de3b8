-- A job whose first message was never confirmed, failed instead of sent: it leaves the
-- unconfirmed set, and its idempotency key (if any, still pending and pointing to that job)
-- is deleted, so that the client told 503 gets a fresh job when it retries with that key.
-- KEYS[1] unconfirmed zset, KEYS[2] idempotency key or a dummy
-- ARGV[1] job id
-- Returns 1 when the job was still unconfirmed, else 0.
local current = redis.call("GET", KEYS[2])
if current then
  local value = cjson.decode(current)
  if value["job_id"] == ARGV[1] and value["pending"] then
    redis.call("DEL", KEYS[2])
  end
end
return redis.call("ZREM", KEYS[1], ARGV[1])
