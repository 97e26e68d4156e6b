-- Adds entries to a tag's set (a sorted set scored by when each entry expires), prunes at most a
-- thousand expired members (the lowest scores), and keeps the set alive as long as its
-- longest-lived member. A set whose members all expired long ago is thus emptied over several
-- writes, never in one long command.
-- KEYS[1]: the tag's set. ARGV[1]: now (ms), ARGV[2]: the longest finite lifetime among the added,
-- in ms, ARGV[3...]: score (+inf for an entry that never expires), member, score, member...
local PRUNE_AT_MOST = 1000
for first = 3, #ARGV, 1000 do
  redis.call('ZADD', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
local expired = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
if expired > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, math.min(expired, PRUNE_AT_MOST) - 1)
end
-- A member that never expires (scored +inf) keeps the set for ever.
if redis.call('ZCOUNT', KEYS[1], '+inf', '+inf') > 0 then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'GT')
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
end
return expired
