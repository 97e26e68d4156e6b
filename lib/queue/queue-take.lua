-- Hands up to ARGV[5] jobs to a consumer, atomically, on Redis's clock:
-- 1. moves delayed jobs that are due to the ready list (at most ARGV[4] per call);
-- 2. moves jobs whose lease expired (their consumer died or stalled) back to the front of the
--    ready list, or to the dead list when they already had maxAttempts (at most ARGV[4] per call);
-- 3. pops the oldest ready jobs, leases each to the caller (active, scored by the lease deadline,
--    with the caller's token and the job's place in the reply) and counts the attempt.
-- KEYS: jobs, ready, delayed, active, attempts, leases, dead, errors, signal (one hash tag).
-- ARGV: visibility timeout in ms, lease token prefix, maxAttempts, most jobs moved per step, most
-- jobs taken. Returns {id, payload, attempts, id, payload, attempts...}, each job's lease token
-- being `<prefix>:<1, 2...>`, or, when none is ready, {ms until the next delayed job or lease is
-- due (-1: none)}.
local jobs, ready, delayed, active, attempts, leases, dead, errors, signal =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local visibility, token, maxAttempts, most, count = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local moved = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, most)) do
  redis.call('ZREM', delayed, id)
  redis.call('LPUSH', ready, id)
  moved = moved + 1
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, most)) do
  redis.call('ZREM', active, id)
  redis.call('HDEL', leases, id)
  if tonumber(redis.call('HGET', attempts, id) or '0') >= maxAttempts then
    redis.call('LPUSH', dead, id)
    redis.call('HSET', errors, id, 'its lease expired on its last attempt (the consumer died or stalled)')
  else
    redis.call('RPUSH', ready, id)
    moved = moved + 1
  end
end
-- Wake other consumers for the jobs just made ready, beyond the one taken here.
for _ = 2, math.min(moved, 64) do
  redis.call('LPUSH', signal, '1')
end

local taken = {}
while #taken < count * 3 do
  local id = redis.call('RPOP', ready)
  if not id then break end
  local payload = redis.call('HGET', jobs, id)
  -- A ready id without a payload cannot be handled (never written by this library): drop it.
  if payload then
    redis.call('ZADD', active, now + visibility, id)
    redis.call('HSET', leases, id, token .. ':' .. (#taken / 3 + 1))
    taken[#taken + 1] = id
    taken[#taken + 1] = payload
    taken[#taken + 1] = redis.call('HINCRBY', attempts, id, 1)
  end
end
if #taken > 0 then
  return taken
end

-- Nothing is ready: any signal left is stale.
redis.call('DEL', signal)
local wait = -1
local nextDelayed = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if nextDelayed[2] then wait = math.max(0, tonumber(nextDelayed[2]) - now) end
local nextLease = redis.call('ZRANGE', active, 0, 0, 'WITHSCORES')
if nextLease[2] then
  local leaseWait = math.max(0, tonumber(nextLease[2]) - now)
  if wait < 0 or leaseWait < wait then wait = leaseWait end
end
return {wait}
