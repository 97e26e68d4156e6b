-- A writer's acquisition. KEYS[1]: the writer (a string holding its token, with a PX lease),
-- KEYS[2]: the readers (token -> end of lease), KEYS[3]: the waiting writers' intents (id -> end
-- of intent), KEYS[4]: the fence. ARGV[1]: the writer's token, ARGV[2]: the lease in ms,
-- ARGV[3]: the writer's id for the whole wait, ARGV[4]: the lease of its intent in ms (0: it does
-- not wait). Returns { fencing token, 0 } when granted; { 0, ms until it may be free } when a
-- writer or unexpired readers hold it. A refused writer that waits records its intent, so no
-- reader is granted until it is in, or its intent has ended; a granted one removes it.
local now = now_ms()
local held_for
if redis.call('GET', KEYS[1]) then
  held_for = redis.call('PTTL', KEYS[1])
else
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local reader = last_end(KEYS[2])
  if reader then held_for = reader - now end
end
if held_for then
  local intent = tonumber(ARGV[4])
  -- The intent is renewed once less than two thirds of it are left: the writer's next attempt
  -- comes within a retry pause (a third of it at most), so it never lapses while the writer
  -- waits, and most refused attempts only read it.
  if intent > 0 and (tonumber(redis.call('ZSCORE', KEYS[3], ARGV[3]) or '0') - now) * 3 < intent * 2 then
    redis.call('ZADD', KEYS[3], now + intent, ARGV[3])
    -- The intents live until the last one ends.
    if redis.call('PTTL', KEYS[3]) < intent then redis.call('PEXPIREAT', KEYS[3], now + intent) end
  end
  return { 0, held_for }
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return { redis.call('INCR', KEYS[4]), 0 }
