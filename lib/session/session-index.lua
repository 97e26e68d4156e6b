-- A user's index of sessions: a sorted set of session handles scored by their absolute deadline
-- (which never moves, so a read that slides the idle timeout need not touch the index). Adds or
-- re-scores one (ARGV[1], with its expiry ARGV[2]; '' for none; with ARGV[3] 'XX', only re-scores
-- one that is there: a seated session, which may have been evicted since), drops any given as
-- ARGV[4...] and the expired ones (on the server's clock), and makes the set expire with its last
-- session. KEYS[1]: the index. Returns the handles left.
-- Scores carry the microseconds of the server's clock as a fraction of a millisecond, so that two
-- sessions made in the same millisecond keep the order they were made in (evict-oldest's order).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ARGV[1] ~= '' then
  local score = tonumber(ARGV[2]) + (tonumber(time[2]) % 1000) / 1000
  if ARGV[3] == 'XX' then redis.call('ZADD', KEYS[1], 'XX', score, ARGV[1]) else redis.call('ZADD', KEYS[1], score, ARGV[1]) end
end
for i = 4, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(last[2])))
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
