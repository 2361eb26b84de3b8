-- Add numbers to the do-not-call list; numbers already listed keep their original entry.
-- KEYS[1] list (zset, score 0), KEYS[2] meta (hash), KEYS[3] audit (stream)
-- ARGV[1] meta JSON for the new entries, ARGV[2] audit entry JSON ('' for none),
-- ARGV[3] audit stream cap, ARGV[4..] E.164 numbers
-- Returns the number of numbers newly listed. The audit entry is written only if any was.
local added = 0
for i = 4, #ARGV do
  if redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[i]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[1])
    added = added + 1
  end
end
if added > 0 and ARGV[2] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'entry', ARGV[2])
end
return added
