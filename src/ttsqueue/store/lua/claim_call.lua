-- uses: attempt_claim
-- An attempt's claim, taken just before its call is originated: at most one dial per attempt.
-- With a number to check, a number on the do-not-call list is refused in the same step.
-- KEYS[1] attempt claim key, KEYS[2] do-not-call zset
-- ARGV[1] owner ("<worker>@<epoch seconds>"), ARGV[2] ttl seconds,
-- ARGV[3] the number to refuse when listed ("" = no check)
-- Returns {1, "", 0} claimed; {0, <holder>, 0} an earlier delivery holds it (listed or not:
-- that call is followed); {0, "", 1} the number is listed, nothing claimed.
return claim_attempt(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
