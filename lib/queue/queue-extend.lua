-- Extends a job's lease to now + the visibility timeout (Redis's clock), only if the caller still
-- holds it. KEYS: active, leases. ARGV: job id, lease token, visibility timeout in ms.
-- Returns 1 when extended, 0 when the lease was lost.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
