-- pin(inuse, lease, expiry): lease an audio cache entry until `expiry` (ms); '' leases nothing.
local function pin(inuse, lease, expiry)
  if lease == '' then return end
  redis.call('ZADD', inuse, expiry, lease)
  local current = redis.call('PEXPIRETIME', inuse)
  if current < tonumber(expiry) then redis.call('PEXPIREAT', inuse, expiry) end
end
