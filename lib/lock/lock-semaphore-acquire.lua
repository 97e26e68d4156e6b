-- Takes ARGV[2] permits of a semaphore of ARGV[3], for a lease of ARGV[4] ms, if that many are
-- free once ended leases are dropped. KEYS[1..3]: see lock-semaphore-leases.lua; KEYS[4]: the
-- fence (the last fencing token handed out; it never expires). ARGV[1]: the holder's token.
-- Returns { fencing token, 0 } when taken; { 0, ms until the first lease ends } when not.
-- Holders above a limit that was lowered keep their permits: none is handed out until the
-- permits held are at most the limit minus those asked for.
local wanted = tonumber(ARGV[2])
-- Leases are scored by their end: only when the first has ended are there any to drop. A refused
-- attempt (the common one on a busy semaphore) thus reads the clock, the first lease and the count.
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
if first and tonumber(first) <= now then
  dropEnded()
  first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
end
if tonumber(redis.call('GET', KEYS[3]) or '0') + wanted > tonumber(ARGV[3]) then
  return { 0, first and (tonumber(first) - now) or 0 }
end
local fencingToken = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
if wanted > 1 then redis.call('HSET', KEYS[2], ARGV[1], wanted) end
redis.call('INCRBY', KEYS[3], wanted)
keepUntilLastLease()
return { fencingToken, 0 }
