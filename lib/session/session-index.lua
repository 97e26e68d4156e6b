-- A user's index of sessions: a sorted set of session handles scored by expiry. Adds or
-- re-scores one (when ARGV[2] is not ''), drops the expired ones and any given as ARGV[3...],
-- and makes the set expire with its last session. KEYS[1]: the index. ARGV[1]: now (ms).
local now = tonumber(ARGV[1])
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2]) end
for i = 4, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
