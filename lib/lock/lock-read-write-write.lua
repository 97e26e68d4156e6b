-- A writer's acquisition. KEYS[1]: the writer (a string holding its token, with a PX lease),
-- KEYS[2]: the readers (token -> end of lease), KEYS[3]: the waiting writers' intents (id -> end
-- of intent), KEYS[4]: the fence. ARGV[1]: the writer's token, ARGV[2]: the lease in ms,
-- ARGV[3]: the writer's id for the whole wait, ARGV[4]: the lease of its intent in ms (0: it does
-- not wait). Returns { fencing token, 0 } when granted; { 0, ms until it may be free } when a
-- writer or unexpired readers hold it. A refused writer that waits records (or renews) its intent,
-- so no reader is granted until it is in, or its intent has ended; a granted one removes it.
local now = now_ms()
local held_for
if redis.call('GET', KEYS[1]) then
  held_for = redis.call('PTTL', KEYS[1])
else
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local reader = last_end(KEYS[2])
  if reader then held_for = reader - now end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if held_for then
  if tonumber(ARGV[4]) > 0 then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[3])
    expire_with_last(KEYS[3])
  end
  return { 0, held_for }
end
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return { redis.call('INCR', KEYS[4]), 0 }
