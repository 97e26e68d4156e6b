-- Settles a failed attempt, only if the caller still holds the job's lease: the job goes back to
-- the delayed set, due after the backoff (Redis's clock), or to the dead list once it has had
-- maxAttempts. The error is kept beside it.
-- KEYS: active, delayed, dead, attempts, leases, errors.
-- ARGV: job id, lease token, maxAttempts, backoff in ms, error message.
-- Returns 1 when it will be retried, 2 when it is dead, 0 when the lease was lost.
local id = ARGV[1]
if redis.call('HGET', KEYS[5], id) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[5], id)
redis.call('HSET', KEYS[6], id, ARGV[5])
if tonumber(redis.call('HGET', KEYS[4], id) or '0') >= tonumber(ARGV[3]) then
  redis.call('LPUSH', KEYS[3], id)
  return 2
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), id)
return 1
