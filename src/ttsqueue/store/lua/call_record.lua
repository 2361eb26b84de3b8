-- Add first-seen facts to a call's record, only if the record exists (foreign calls leave no
-- keys; duplicates from several AMI sessions are harmless).
-- KEYS[1] the call's record hash; ARGV field/value pairs
-- Returns 1 when the record exists.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
