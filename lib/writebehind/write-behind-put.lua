-- Records a value to persist for one key of a write-behind target: a new version (every write
-- gets one, so the persisting side can tell whether a newer write came meanwhile), the value, and
-- since when the key has been pending (kept from its first unpersisted write).
-- KEYS[1]: versions (hash key -> version), KEYS[2]: values (hash key -> value), KEYS[3]: the
-- version counter, KEYS[4]: pending since (sorted set key -> ms on Redis's clock); one slot.
-- ARGV[1]: the key, ARGV[2]: the encoded value. Returns the version.
local version = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], version)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local time = redis.call('TIME')
redis.call('ZADD', KEYS[4], 'NX', tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000), ARGV[1])
return version
