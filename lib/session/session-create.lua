-- Writes a new session on the server's clock. KEYS[1]: the session key (named by a hash of its
-- id). ARGV: idle ttl (ms), absolute ttl (ms), user id ('' for none), then field/value pairs of
-- its data. Returns the creation time (ms).
local now = sessionNow()
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
writeMeta(KEYS[1], { c = now, l = now, i = tonumber(ARGV[1]), a = tonumber(ARGV[2]), o = '', u = ARGV[3] }, now)
return now
