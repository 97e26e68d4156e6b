-- Acknowledges a job: removes it for good, only if the caller still holds its lease (a consumer
-- whose lease expired, and whose job went to another consumer, cannot acknowledge it).
-- KEYS: jobs, active, attempts, leases, errors. ARGV: job id, lease token.
-- Returns 1 when acknowledged, 0 when the lease was lost.
local id = ARGV[1]
if redis.call('HGET', KEYS[4], id) ~= ARGV[2] then
  return 0
end
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[4], id)
redis.call('HDEL', KEYS[1], id)
redis.call('HDEL', KEYS[3], id)
redis.call('HDEL', KEYS[5], id)
return 1
