-- A reader's acquisition. KEYS[1]: the readers (token -> end of lease), KEYS[2]: the writer
-- (a string holding its token, with a PX lease), KEYS[3]: the waiting writers' intents (id -> end
-- of intent), KEYS[4]: the fence. ARGV[1]: the reader's token, ARGV[2]: the lease in ms.
-- Returns { fencing token, 0 } when granted; { 0, ms until it may be free } when a writer holds
-- the lock or waits for it (writer preference: a waiting writer is never overtaken by new readers).
-- GET fails with WRONGTYPE on a writer key holding anything but a token: a bug, not a holder.
local now = now_ms()
if redis.call('GET', KEYS[2]) then
  return { 0, redis.call('PTTL', KEYS[2]) }
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local intent = last_end(KEYS[3])
if intent then
  return { 0, intent - now }
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
expire_with_last(KEYS[1])
return { redis.call('INCR', KEYS[4]), 0 }
