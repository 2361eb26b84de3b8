-- uses: cache_pin
-- A job's status change with everything that changes with it, atomically: one or more hops
-- along SPEC §3's transitions (e.g. scheduled -> queued -> processing), then the fields,
-- counters and histograms of the change. Each hop writes its history entry, moves the id
-- between the status indexes, publishes its event and queues its webhook.
-- KEYS[1] job hash, KEYS[2] history list
-- ARGV[1] key prefix, ARGV[2] job id, ARGV[3] the change, a MessagePack map (cmsgpack reads it
-- in about 60% of cjson's time for the same JSON; values are strings, numbers and booleans):
--   {"hops": [{"from": ["scheduled", "retrying"], "to": "queued", "entry": "<history json>",
--              "detail": "due", "set": {field: value}, "optional": true}, ...],
--    "at": "<iso time>", "set": {field: value}, "outcome": "busy",
--    "metrics": {name: n}, "worker": "<worker stats key>", "worker_incr": {name: n},
--    "worker_ttl": seconds the worker's counters are kept,
--    "minute": "<epoch minute>", "finished": "<status>|<outcome>",
--    "observe": [{"key": "<histogram hash>", "field": "le:<smallest bound at or above the
--                 value>" or "le:+Inf", "us": the value in microseconds (an integer)}]}
--   What else the same call may do (so that a worker's step is one round trip):
--    "count": {"key": k, "ttl": s}   count a delivery, whatever follows (the count expires
--                                     `ttl` seconds after the first one);
--    "release": [[zset, member], ...] drop audio cache leases and the call's trunk line,
--                                     whatever follows;
--    "read": true                     reply with the record as it was before the change;
--    "guard": {"priority": p, "attempt": n, "max_count": m}  apply only if the job has that
--                                     priority, n is its next attempt, the count is <= m;
--    "pin": {"keys": [key, ...], "lease": id, "now": ms, "expiry": ms, "lru": k,
--            "sizes": k, "stats": k, "in_use": prefix}  once applied, take the first of the
--                                     audio cache `keys` that the cache indexes and touch it
--                                     as cache_touch.lua does: its LRU place, a hit, the
--                                     lease until `expiry`.
-- An optional hop whose source does not match is skipped; any other mismatch refuses the
-- whole change before anything is written.
-- Returns {applied 1|0, status before ("" when no record), status now, count, the pinned
-- cache key ("" when none), then the record's field/value pairs if "read"}.
local change = cmsgpack.unpack(ARGV[3])
local count = 0
if change["count"] then
  -- The first delivery (the common case) in one command; a later one adds to the count.
  if redis.call("SET", change["count"]["key"], 1, "EX", change["count"]["ttl"], "NX") then
    count = 1
  else
    count = redis.call("INCR", change["count"]["key"])
  end
end
if change["release"] then
  for _, lease in ipairs(change["release"]) do
    redis.call("ZREM", lease[1], lease[2])
  end
end
-- What the change is decided on, read in one call before the job's record is written: the
-- status, the priority (guard and indexes), the attempts (guard), the callback URL (webhooks).
local fields = redis.call("HMGET", KEYS[1], "status", "priority", "attempts", "callback_url")
local current = fields[1]
local record = {}
if change["read"] and current then
  record = redis.call("HGETALL", KEYS[1])
end
local pinned = ""
local function reply(applied, before, now)
  local out = {applied, before, now, count, pinned}
  for _, v in ipairs(record) do out[#out + 1] = v end
  return out
end
if not current then
  return reply(0, "", "")
end
local hops = change["hops"]

local guard = change["guard"]
if guard then
  if guard["priority"] and fields[2] ~= guard["priority"] then
    return reply(0, current, current)
  end
  if guard["attempt"] and tonumber(fields[3] or "0") + 1 ~= guard["attempt"] then
    return reply(0, current, current)
  end
  if guard["max_count"] and count > guard["max_count"] then
    return reply(0, current, current)
  end
end

local function admits(hop, status)
  for _, s in ipairs(hop["from"]) do
    if s == status then return true end
  end
  return false
end

-- Walk the path first: nothing is written unless the last hop can be taken.
local walk = current
local taken = {}
for i, hop in ipairs(hops) do
  if admits(hop, walk) then
    taken[i] = true
    walk = hop["to"]
  elseif not hop["optional"] then
    return reply(0, current, current)
  end
end
if not taken[#hops] then
  return reply(0, current, current)
end

local prefix = ARGV[1]
local id = ARGV[2]
local at = change["at"]
local priority = fields[2]
local score = redis.call("ZSCORE", prefix .. "jobs:status:" .. current, id)
if not score then
  score = redis.call("ZSCORE", prefix .. "jobs", id)
end
local callback = fields[4]

-- Appends a change's fields to one HSET's arguments: later pairs win, as later writes would.
local function add_fields(flat, set)
  if not set then return end
  for k, v in pairs(set) do
    flat[#flat + 1] = k
    flat[#flat + 1] = tostring(v)
  end
end

local function move(from, to)
  local old_key = prefix .. "jobs:status:" .. from
  redis.call("ZREM", old_key, id)
  if priority then redis.call("ZREM", old_key .. ":" .. priority, id) end
  if score then
    redis.call("ZADD", prefix .. "jobs:status:" .. to, score, id)
    if priority then
      redis.call("ZADD", prefix .. "jobs:status:" .. to .. ":" .. priority, score, id)
    end
  end
end

local function announce(hop, from)
  local event = {job_id = id, status = hop["to"], previous_status = from, at = at,
                 detail = hop["detail"]}
  redis.call("PUBLISH", prefix .. "events", cjson.encode(event))
  -- A job with a callback URL gets this change queued for webhook delivery (a stream:
  -- durable, delivered at least once, in order).
  if callback then
    local hook = {job_id = id, status = hop["to"], previous_status = from, at = at,
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

local before = current
for i, hop in ipairs(hops) do
  if taken[i] then
    local flat = {"status", hop["to"], "updated_at", at}
    add_fields(flat, hop["set"])
    if i == #hops then
      add_fields(flat, change["set"])
    end
    redis.call("HSET", KEYS[1], unpack(flat))
    redis.call("RPUSH", KEYS[2], hop["entry"])
    move(current, hop["to"])
    announce(hop, current)
    current = hop["to"]
  end
end

if change["outcome"] then
  redis.call("HINCRBY", prefix .. "stats:outcomes", change["outcome"], 1)
end
if change["metrics"] then
  for k, v in pairs(change["metrics"]) do
    redis.call("HINCRBY", prefix .. "stats:metrics", k, v)
  end
end
if change["minute"] then
  redis.call("HINCRBY", prefix .. "stats:throughput", change["minute"], 1)
end
if change["worker"] and change["worker_incr"] then
  local started = false
  for k, v in pairs(change["worker_incr"]) do
    if redis.call("HINCRBY", change["worker"], k, v) == v then started = true end
  end
  -- The expiry is set when a counter starts; the worker's heartbeats renew it from then on
  -- (store/workers.py).
  if started then redis.call("EXPIRE", change["worker"], change["worker_ttl"]) end
end
if change["finished"] then
  redis.call("HINCRBY", prefix .. "stats:finished", change["finished"], 1)
end
if change["observe"] then
  -- One field per bucket, counting the values that fall in it (not cumulative, and no
  -- separate count: two writes per observation); readers add them up into Prometheus's
  -- cumulative buckets and count. The sum is kept in whole microseconds: HINCRBY, where
  -- HINCRBYFLOAT parses and prints a float.
  for _, o in ipairs(change["observe"]) do
    redis.call("HINCRBY", o["key"], o["field"], 1)
    redis.call("HINCRBY", o["key"], "sum_us", o["us"])
  end
end
local wanted = change["pin"]
if wanted then
  for _, key in ipairs(wanted["keys"]) do
    if redis.call("HEXISTS", wanted["sizes"], key) == 1 then
      redis.call("ZADD", wanted["lru"], wanted["now"], key)
      redis.call("HINCRBY", wanted["stats"], "hits", 1)
      pin(wanted["in_use"] .. key, wanted["lease"], wanted["expiry"])
      pinned = key
      break
    end
  end
end
return reply(1, before, current)
