-- uses: line_grant, attempt_claim
-- A trunk line and, when it is granted, the attempt's claim in the same step: a call whose
-- calling policy needs nothing from Redis (window open, no contact cap) asks once for both.
-- KEYS and ARGV: line_acquire.lua's, then KEYS[#KEYS - 1] attempt claim key, KEYS[#KEYS]
-- do-not-call zset; ARGV[#ARGV - 2] owner, ARGV[#ARGV - 1] ttl seconds, ARGV[#ARGV] the number
-- to refuse when listed (claim_call.lua's arguments).
-- Returns line_acquire.lua's reply, followed by claim_call.lua's when the line is held.
local line = acquire_line()
if tonumber(line[1]) ~= 1 then
  return line
end
local claim = claim_attempt(KEYS[#KEYS - 1], KEYS[#KEYS], ARGV[#ARGV - 2], ARGV[#ARGV - 1],
                            ARGV[#ARGV])
return {line[1], line[2], line[3], line[4], claim[1], claim[2], claim[3]}
