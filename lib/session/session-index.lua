-- A user's index of sessions: a sorted set of session handles scored by their absolute deadline
-- (which never moves, so a read that slides the idle timeout need not touch the index). Adds or
-- re-scores one (ARGV[1], with its expiry ARGV[2]; '' for none), drops any given as ARGV[3...]
-- and the expired ones (on the server's clock), and makes the set expire with its last session.
-- KEYS[1]: the index. Returns the handles left.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
for i = 3, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
