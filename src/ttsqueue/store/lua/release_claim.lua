-- Release a call claim only if it is still the one given: a release made again on a new
-- Redis master (store/journal.py) must not remove a later delivery's claim.
-- KEYS[1] attempt claim key
-- ARGV[1] the owner the claim had when it was released
-- Returns 1 when released, 0 when the claim is gone or another's.
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
