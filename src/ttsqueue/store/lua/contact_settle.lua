-- Settle a contact claim once its call has ended.
-- KEYS[1] the number's contacts that day; ARGV[1] claimant, ARGV[2] '1' answered / '0' not,
-- ARGV[3] key TTL seconds
-- Answered: the contact counts for the rest of the day (+inf), even if its lease had run out.
-- Not answered: the claim is given back, unless that attempt had already been counted.
if ARGV[2] == '1' then
  redis.call('ZADD', KEYS[1], 'inf', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and score ~= 'inf' then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
