-- Writes a new session on the server's clock. KEYS[1]: the session key (named by a hash of its
-- id). ARGV: idle ttl (ms), absolute ttl (ms), user id ('' for none), then field/value pairs of
-- its data. Returns the creation time (ms).
local now = sessionNow()
local meta = { c = now, l = now, i = tonumber(ARGV[1]), a = tonumber(ARGV[2]), o = '', u = ARGV[3] }
writeMeta(KEYS[1], meta, now, ARGV, 4, #ARGV)
return now
