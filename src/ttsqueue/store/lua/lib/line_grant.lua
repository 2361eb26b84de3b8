-- acquire_line(): a trunk line for one call in priority order (line_acquire.lua describes
-- its KEYS, ARGV and reply); reads KEYS and ARGV up to the last server's, so a script may
-- pass more after them.
local function acquire_line()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local id = ARGV[1]
  local lease_ms = tonumber(ARGV[2])
  local ttl = tonumber(ARGV[4])
  local n = tonumber(ARGV[7])

  local servers = {}
  local by_name = {}
  for i = 1, n do
    local s = {
      name = ARGV[5 + 3 * i],
      max = tonumber(ARGV[6 + 3 * i]),
      interval = tonumber(ARGV[7 + 3 * i]),
      lines = KEYS[5 + 2 * i],
      rate = KEYS[6 + 2 * i],
      index = i,
    }
    redis.call('ZREMRANGEBYSCORE', s.lines, '-inf', now)
    servers[i] = s
    by_name[s.name] = s
  end

  local function expire_lines(s)
    local newest = redis.call('ZRANGE', s.lines, -1, -1, 'WITHSCORES')
    if newest[2] then
      redis.call('PEXPIREAT', s.lines, math.ceil(tonumber(newest[2])) + 1000)
    end
  end

  local function leave()
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[6], id)
  end

  local function candidates(text)
    local found = {}
    for name in string.gmatch(text or '', '[^,]+') do
      if by_name[name] then found[#found + 1] = name end
    end
    return found
  end
  local mine_c = candidates(ARGV[6])
  local high = ARGV[3] == 'high'

  -- This job's turn: the candidate with the most free lines whose rate allows a call now
  -- (ties: the server listed first); else nil and the ms until a rate allows one.
  local function pick(free)
    local order = {}
    for _, name in ipairs(mine_c) do
      if free[name] > 0 then order[#order + 1] = name end
    end
    table.sort(order, function(a, b)
      if free[a] ~= free[b] then return free[a] > free[b] end
      return by_name[a].index < by_name[b].index
    end)
    local wait = nil
    for _, name in ipairs(order) do
      local s = by_name[name]
      local last = redis.call('ZRANGE', s.rate, -1, -1, 'WITHSCORES')
      if last[2] and now < tonumber(last[2]) + s.interval then
        local w = math.ceil(tonumber(last[2]) + s.interval - now)
        if wait == nil or w < wait then wait = w end
      else
        return s, 0
      end
    end
    return nil, wait or 0
  end

  -- `n_normal`: normal jobs waiting (a high grant past them lengthens the streak); `queued`:
  -- whether this job had taken its place in line.
  local function grant(chosen, n_normal, queued)
    redis.call('ZADD', chosen.lines, now + lease_ms, id)
    local keep = math.ceil(math.max(10000, 2 * chosen.interval))
    redis.call('ZADD', chosen.rate, now, id .. '@' .. t[1] .. '.' .. t[2])
    redis.call('ZREMRANGEBYSCORE', chosen.rate, '-inf', now - keep)
    redis.call('PEXPIRE', chosen.rate, keep)
    if queued then leave() end
    if high and n_normal > 0 then
      redis.call('INCR', KEYS[5])
      redis.call('PEXPIRE', KEYS[5], 2 * ttl)
    else
      redis.call('SET', KEYS[5], 0, 'PX', 2 * ttl)
    end
    expire_lines(chosen)
    return {1, 0, 0, chosen.name}
  end

  local function free_lines()
    local free = {}
    for _, s in ipairs(servers) do
      free[s.name] = math.max(0, s.max - redis.call('ZCARD', s.lines))
    end
    return free
  end

  -- Already held (a renewal, or a call followed again after a redelivery): on whichever server.
  for _, s in ipairs(servers) do
    if redis.call('ZSCORE', s.lines, id) then
      redis.call('ZADD', s.lines, now + lease_ms, id)
      expire_lines(s)
      leave()
      return {1, 0, 0, s.name}
    end
  end

  -- Waiters whose worker stopped asking (crashed, or gave up) lose their place.
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  for _, w in ipairs(gone) do
    redis.call('ZREM', KEYS[1], w)
    redis.call('ZREM', KEYS[2], w)
    redis.call('HDEL', KEYS[6], w)
  end
  if #gone > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  end

  -- Nobody waits: the line is this job's if one is free now (what the queue would grant it
  -- first in line), without queueing it; else it queues as below.
  if redis.call('ZCARD', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0 then
    local chosen = pick(free_lines())
    if chosen then return grant(chosen, 0, false) end
  end

  local mine = KEYS[2]
  if high then mine = KEYS[1] end
  if not redis.call('ZSCORE', mine, id) then
    redis.call('ZADD', mine, redis.call('INCR', KEYS[4]), id)
  end
  redis.call('ZADD', KEYS[3], now + ttl, id)
  redis.call('HSET', KEYS[6], id, ARGV[6])
  -- Everything about waiting lives only while somebody waits and asks.
  for i = 1, 6 do
    redis.call('PEXPIRE', KEYS[i], 2 * ttl)
  end

  local free = free_lines()
  local function my_free()
    local total = 0
    for _, name in ipairs(mine_c) do total = total + free[name] end
    return total
  end

  local n_high = redis.call('ZCARD', KEYS[1])
  local n_normal = redis.call('ZCARD', KEYS[2])
  local streak = tonumber(redis.call('GET', KEYS[5]) or '0')
  local normal_first = n_high > 0 and n_normal > 0 and streak >= tonumber(ARGV[5])
  local rank
  local mine_rank = redis.call('ZRANK', mine, id)
  if high then
    rank = mine_rank
    if normal_first then rank = rank + 1 end
  else
    if normal_first and mine_rank == 0 then rank = 0 else rank = n_high + mine_rank end
  end

  local total_free = my_free()
  if total_free <= rank and n == 1 then
    -- One server: every waiter ahead needs one of its lines.
    return {0, 0, rank - total_free + 1, ''}
  end
  if total_free == 0 then
    return {0, 0, rank + 1, ''}
  end

  if n > 1 and rank > 0 then
    -- The waiters ahead, in grant order, take free lines first (as their grants would).
    local ahead = {}
    if high then
      if normal_first then
        ahead[1] = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
      end
      if mine_rank > 0 then
        for _, w in ipairs(redis.call('ZRANGE', KEYS[1], 0, mine_rank - 1)) do
          ahead[#ahead + 1] = w
        end
      end
    elseif rank > 0 then
      local skip = nil
      if normal_first then
        skip = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
        ahead[1] = skip
      end
      for _, w in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do ahead[#ahead + 1] = w end
      if mine_rank > 0 then
        for _, w in ipairs(redis.call('ZRANGE', KEYS[2], 0, mine_rank - 1)) do
          if w ~= skip then ahead[#ahead + 1] = w end
        end
      end
    end
    for k, w in ipairs(ahead) do
      local best = nil
      for _, name in ipairs(candidates(redis.call('HGET', KEYS[6], w))) do
        if free[name] > 0 and (best == nil or free[name] > free[best]) then best = name end
      end
      if best then free[best] = free[best] - 1 end
      if my_free() == 0 then
        return {0, 0, #ahead - k + 1, ''}
      end
    end
  elseif n == 1 then
    free[servers[1].name] = free[servers[1].name] - rank
  end

  local chosen, wait = pick(free)
  if chosen == nil then
    return {0, wait, 0, ''}
  end
  return grant(chosen, n_normal, true)
end
