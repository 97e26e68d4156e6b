-- The size of each part of a queue, read at one instant.
-- KEYS: ready, active, delayed, dead. Returns {waiting, active, delayed, dead}.
return {
  redis.call('LLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('LLEN', KEYS[4]),
}
