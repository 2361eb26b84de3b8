-- evict(lru, sizes, files, stats, max_bytes, now, inuse_prefix, keep): remove least
-- recently used entries until the total fits, skipping `keep` and entries with a live lease.
-- Returns {key, file identity, ...} of the victims: the caller deletes their files, but only
-- files that still have that identity.
local function evict(lru, sizes, files, stats, max_bytes, now, inuse_prefix, keep)
  local total = tonumber(redis.call('HGET', stats, 'bytes') or '0')
  local victims = {}
  local skipped = 0
  while total > max_bytes do
    local batch = redis.call('ZRANGE', lru, skipped, skipped + 63)
    if #batch == 0 then break end
    for _, k in ipairs(batch) do
      if total <= max_bytes then break end
      if k == keep or redis.call('ZCOUNT', inuse_prefix .. k, '(' .. now, '+inf') > 0 then
        skipped = skipped + 1
      else
        total = total - tonumber(redis.call('HGET', sizes, k) or '0')
        victims[#victims + 1] = k
        victims[#victims + 1] = redis.call('HGET', files, k) or ''
        redis.call('ZREM', lru, k)
        redis.call('HDEL', sizes, k)
        redis.call('HDEL', files, k)
      end
    end
  end
  redis.call('HSET', stats, 'bytes', total)
  return victims
end
