-- Writes a new session on the server's clock. KEYS[1]: the session key (named by a hash of its
-- id). ARGV: idle ttl (ms), absolute ttl (ms), user id ('' for none), then field/value pairs of
-- its data. Returns the creation time (ms).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local idle, absolute = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'c', now, 'l', now, 'i', idle, 'a', absolute, 'u', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], math.min(idle, absolute))
return now
