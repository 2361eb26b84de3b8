-- A job's first message is confirmed by RabbitMQ: it leaves the unconfirmed set, and its
-- idempotency key (if any, and still pointing to this job) stops being "pending".
-- KEYS[1] unconfirmed zset, KEYS[2] idempotency key or a dummy
-- ARGV[1] job id, ARGV[2] "1" when the job has an idempotency key
-- Returns 1 when the job was still unconfirmed.
if ARGV[2] == "1" then
  local current = redis.call("GET", KEYS[2])
  if current then
    local value = cjson.decode(current)
    if value["job_id"] == ARGV[1] and value["pending"] then
      -- Only strings inside: re-encoding changes nothing but the dropped flag.
      value["pending"] = nil
      redis.call("SET", KEYS[2], cjson.encode(value), "KEEPTTL")
    end
  end
end
return redis.call("ZREM", KEYS[1], ARGV[1])
