-- claim_attempt(claim, dnc, owner, ttl, refuse): an attempt's claim (claim_call.lua describes
-- its arguments and reply).
local function claim_attempt(claim, dnc, owner, ttl, refuse)
  local holder = redis.call("GET", claim)
  if holder then
    return {0, holder, 0}
  end
  if refuse ~= "" and redis.call("ZSCORE", dnc, refuse) then
    return {0, "", 1}
  end
  redis.call("SET", claim, owner, "EX", tonumber(ttl))
  return {1, "", 0}
end
