-- Shared by the semaphore scripts. KEYS[1]: the holders (a sorted set: token -> the end of its
-- lease, in ms on this server's clock), KEYS[2]: the permits of the holders of several (a hash:
-- token -> count; a holder absent from it has one), KEYS[3]: the permits held in all (their
-- sum). One hash tag: one slot on a Cluster.
-- Leases are decided on Redis's clock only: the hosts' clocks never count.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Takes `token`'s permits back: 1 when it was a holder, 0 when not. The keys go once nothing is
-- held.
local function forget(token)
  if redis.call('ZREM', KEYS[1], token) == 0 then return 0 end
  local permits = 1
  local several = redis.call('HGET', KEYS[2], token)
  if several then
    permits = tonumber(several)
    redis.call('HDEL', KEYS[2], token)
  end
  if redis.call('DECRBY', KEYS[3], permits) <= 0 then redis.call('DEL', KEYS[3]) end
  return 1
end

-- Drops the holders whose lease has ended (at its end, never sooner). There are never more
-- holders than permits were granted at once, which bounds the work.
local function dropEnded()
  for _, token in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do forget(token) end
end

-- Keeps the keys until the last lease ends, so a semaphore whose holders all crashed leaves
-- nothing behind.
local function keepUntilLastLease()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
  if last then
    for i = 1, 3 do redis.call('PEXPIREAT', KEYS[i], last) end
  end
end
