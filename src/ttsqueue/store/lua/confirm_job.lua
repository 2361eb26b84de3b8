-- Jobs whose first message RabbitMQ confirmed: each leaves the unconfirmed set, and its
-- idempotency key (if any, and still pointing to that job) stops being "pending".
-- KEYS[1] unconfirmed zset
-- ARGV[1] key prefix, then pairs: job id, idempotency key digest ("" for none)
-- Returns, per job in order, 1 when it was still unconfirmed, else 0.
local prefix = ARGV[1]
local replies = {}
for i = 2, #ARGV, 2 do
  local id, digest = ARGV[i], ARGV[i + 1]
  if digest ~= "" then
    local key = prefix .. "idem:" .. digest
    local current = redis.call("GET", key)
    if current then
      local value = cjson.decode(current)
      if value["job_id"] == id and value["pending"] then
        -- Only strings inside: re-encoding changes nothing but the dropped flag.
        value["pending"] = nil
        redis.call("SET", key, cjson.encode(value), "KEEPTTL")
      end
    end
  end
  replies[#replies + 1] = redis.call("ZREM", KEYS[1], id)
end
return replies
