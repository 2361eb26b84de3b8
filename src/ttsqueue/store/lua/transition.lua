-- Compare-and-set of a job's status, with everything that must change with it.
-- KEYS[1] job hash, KEYS[2] history list
-- ARGV[1] key prefix, ARGV[2] job id, ARGV[3] allowed current statuses, comma separated,
-- ARGV[4] target status, ARGV[5] history entry json, ARGV[6] effects json:
--   {"set": {field: value}, "del": [field], "outcome": "busy", "metrics": {name: n},
--    "worker": "<worker stats key>", "worker_incr": {name: n}, "minute": "<epoch minute>",
--    "event": {...}, "finished": "<status>|<outcome>",
--    "observe": [{"key": "<histogram hash>", "value": seconds, "bucket": "<smallest bound
--                 at or above the value; absent above the last one>"}]}
-- Returns {1, previous status} when applied, {0, current status or ""} when refused.
local current = redis.call("HGET", KEYS[1], "status")
if not current then
  return {0, ""}
end
local allowed = false
for s in string.gmatch(ARGV[3], "[^,]+") do
  if s == current then allowed = true end
end
if not allowed then
  return {0, current}
end
local prefix = ARGV[1]
local id = ARGV[2]
local target = ARGV[4]
local effects = cjson.decode(ARGV[6])

local pairs_out = {"status", target}
if effects["set"] then
  for k, v in pairs(effects["set"]) do
    pairs_out[#pairs_out + 1] = k
    pairs_out[#pairs_out + 1] = tostring(v)
  end
end
redis.call("HSET", KEYS[1], unpack(pairs_out))
if effects["del"] then
  for _, k in ipairs(effects["del"]) do redis.call("HDEL", KEYS[1], k) end
end
redis.call("RPUSH", KEYS[2], ARGV[5])

-- Move the id between status indexes (alone and with its priority), keeping its
-- creation-time score.
local old_key = prefix .. "jobs:status:" .. current
local score = redis.call("ZSCORE", old_key, id)
if not score then
  score = redis.call("ZSCORE", prefix .. "jobs", id)
end
redis.call("ZREM", old_key, id)
local priority = redis.call("HGET", KEYS[1], "priority")
if priority then
  redis.call("ZREM", old_key .. ":" .. priority, id)
end
if score then
  redis.call("ZADD", prefix .. "jobs:status:" .. target, score, id)
  if priority then
    redis.call("ZADD", prefix .. "jobs:status:" .. target .. ":" .. priority, score, id)
  end
end

if effects["outcome"] then
  redis.call("HINCRBY", prefix .. "stats:outcomes", effects["outcome"], 1)
end
if effects["metrics"] then
  for k, v in pairs(effects["metrics"]) do
    redis.call("HINCRBY", prefix .. "stats:metrics", k, v)
  end
end
if effects["minute"] then
  redis.call("HINCRBY", prefix .. "stats:throughput", effects["minute"], 1)
end
if effects["worker"] and effects["worker_incr"] then
  for k, v in pairs(effects["worker_incr"]) do
    redis.call("HINCRBY", effects["worker"], k, v)
  end
  redis.call("EXPIRE", effects["worker"], 86400)
end
if effects["finished"] then
  redis.call("HINCRBY", prefix .. "stats:finished", effects["finished"], 1)
end
if effects["observe"] then
  -- One field per bucket, counting the values that fall in it (not cumulative: one write
  -- per observation); readers add them up into Prometheus's cumulative buckets.
  for _, o in ipairs(effects["observe"]) do
    if o["bucket"] then redis.call("HINCRBY", o["key"], o["bucket"], 1) end
    redis.call("HINCRBY", o["key"], "count", 1)
    redis.call("HINCRBYFLOAT", o["key"], "sum", o["value"])
  end
end
if effects["event"] then
  effects["event"]["previous_status"] = current
  redis.call("PUBLISH", prefix .. "events", cjson.encode(effects["event"]))
  -- A job with a callback URL gets this change queued for webhook delivery (a stream:
  -- durable, delivered at least once, in order).
  local callback = redis.call("HGET", KEYS[1], "callback_url")
  if callback then
    local hook = {job_id = id, status = target, previous_status = current,
                  at = effects["event"]["at"],
                  attempts = tonumber(redis.call("HGET", KEYS[1], "attempts") or "0")}
    -- `call` and the client's `metadata` are stored as JSON text and spliced in as they are:
    -- cjson would turn [] into {} and an 18-digit integer into a float.
    local body = string.sub(cjson.encode(hook), 1, -2)
    for _, name in ipairs({"call", "metadata"}) do
      local raw = redis.call("HGET", KEYS[1], name)
      if raw then body = body .. ',"' .. name .. '":' .. raw end
    end
    redis.call("XADD", prefix .. "webhooks", "MAXLEN", "~", "100000", "*",
               "job_id", id, "url", callback, "body", body .. "}")
  end
end
return {1, current}
