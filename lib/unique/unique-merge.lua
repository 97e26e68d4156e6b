-- Stores the union of a unique counter's periods as a roll-up, and counts it.
-- KEYS[1]: the roll-up, KEYS[2...]: the periods' HyperLogLogs (one slot: the counter's hash tag).
-- ARGV[1]: when the roll-up expires (ms since the epoch; '' for never).
redis.call('DEL', KEYS[1])
redis.call('PFMERGE', unpack(KEYS))
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return redis.call('PFCOUNT', KEYS[1])
