-- Ends a claim. When the value was persisted and no newer write came meanwhile, the key is no
-- longer pending; a newer write keeps it pending, with its own job to come.
-- KEYS[1]: versions, KEYS[2]: values, KEYS[3]: the key's claim, KEYS[4]: pending since; one slot.
-- ARGV[1]: the key, ARGV[2]: the claim's token, ARGV[3]: the version persisted ('' when it failed).
-- Returns 1 when the key is no longer pending.
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
if ARGV[3] == '' or redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
