-- Local functions of the fair lock's scripts (a prelude). Each key of a fair lock has a queue of
-- waiters in its hash tag, as two sorted sets: the queue (waiter id -> arrival number: the lowest
-- is served first) and the heartbeats (waiter id -> when the waiter's heartbeat lease ends, in ms
-- of Redis's clock). A waiter renews its heartbeat each time it tries; one that stops (it crashed,
-- or gave up without leaving) is dropped once its heartbeat lease has ended.

-- Redis's clock, in ms.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Drops the waiters whose heartbeat lease has ended, at most 100 a call (more are dropped by the
-- next calls).
local function drop_expired(queue, heartbeats, now)
  local expired = redis.call('ZRANGEBYSCORE', heartbeats, '-inf', now, 'LIMIT', 0, 100)
  if #expired > 0 then
    redis.call('ZREM', queue, unpack(expired))
    redis.call('ZREM', heartbeats, unpack(expired))
  end
end

-- The waiter to serve first, or false when no one waits.
local function first_waiter(queue)
  return redis.call('ZRANGE', queue, 0, 0)[1] or false
end
