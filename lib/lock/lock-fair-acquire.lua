-- Takes a fair lock for the waiter whose turn it is, or keeps the caller waiting in line.
-- KEYS: the n lock keys, their n fence keys, their n queues and their n heartbeat sets (see
-- lock-fair-queue.lua), all in one hash tag. ARGV[1]: the waiter's id, ARGV[2]: the token to hold
-- the lock with, ARGV[3]: the lease in ms, ARGV[4]: the waiter's heartbeat lease in ms, or 0 to
-- try once without joining the queues.
-- The lock is granted when none of its keys is held and the caller is first in every queue (or
-- the queues are empty); it then leaves the queues. Otherwise the caller joins every queue at its
-- end, or renews its heartbeat there. Joining all queues in one script puts any two waiters in the
-- same order in every queue they share, so waiters for several keys cannot block each other in a
-- cycle. A waiter missing from a queue (dropped when its heartbeat lease ended) joins them all
-- again at their end.
-- Returns { fencing token, 0 } when granted; { 0, the longest pttl of a held key (0: none held) }.
-- The fencing token is one more than the highest fence of the keys (the fence keys of every lock
-- of these keys, fair or not), and becomes every key's fence.
local n = #KEYS / 4
local waiter, heartbeat_ms = ARGV[1], tonumber(ARGV[4])
local held, held_for = false, 0
for i = 1, n do
  if redis.call('GET', KEYS[i]) then
    held = true
    held_for = math.max(held_for, redis.call('PTTL', KEYS[i]))
  end
end
-- A line exists only while someone waits: without one, no clock to read and no line to look at.
local lines = redis.call('EXISTS', unpack(KEYS, 2 * n + 1, 3 * n)) > 0
local now = lines and now_ms()
local queued, first = lines, true
for i = 1, lines and n or 0 do
  local queue = KEYS[2 * n + i]
  drop_expired(queue, KEYS[3 * n + i], now)
  if not redis.call('ZSCORE', queue, waiter) then queued = false end
  local head = first_waiter(queue)
  if head and head ~= waiter then first = false end
end
if not held and first then
  local token
  if n == 1 then
    token = redis.call('INCR', KEYS[2])
  else
    token = 0
    for i = n + 1, 2 * n do token = math.max(token, tonumber(redis.call('GET', KEYS[i]) or '0')) end
    token = token + 1
    for i = n + 1, 2 * n do redis.call('SET', KEYS[i], token) end
  end
  for i = 1, n do
    redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3])
    if lines then
      redis.call('ZREM', KEYS[2 * n + i], waiter)
      redis.call('ZREM', KEYS[3 * n + i], waiter)
    end
  end
  return { token, 0 }
end
if heartbeat_ms == 0 then return { 0, held_for } end
now = now or now_ms()
for i = 1, n do
  local queue, heartbeats = KEYS[2 * n + i], KEYS[3 * n + i]
  if not queued then
    redis.call('ZREM', queue, waiter)
    local last = redis.call('ZRANGE', queue, -1, -1, 'WITHSCORES')
    redis.call('ZADD', queue, (tonumber(last[2]) or 0) + 1, waiter)
  end
  redis.call('ZADD', heartbeats, now + heartbeat_ms, waiter)
  -- A queue nobody renews any more (every waiter gone) expires with the last heartbeat lease.
  for _, key in ipairs({ queue, heartbeats }) do
    if redis.call('PTTL', key) < heartbeat_ms then redis.call('PEXPIRE', key, heartbeat_ms) end
  end
end
return { 0, held_for }
