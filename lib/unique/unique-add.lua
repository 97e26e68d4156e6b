-- Adds items to one period of a unique counter (a HyperLogLog), and sets when it expires.
-- KEYS[1]: the period's HyperLogLog. ARGV[1]: when it expires (ms since the epoch; '' for never),
-- ARGV[2...]: the items. Returns 1 when the estimate changed.
local changed = redis.call('PFADD', KEYS[1], unpack(ARGV, 2))
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return changed
