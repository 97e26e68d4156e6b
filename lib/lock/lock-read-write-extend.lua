-- Renews a reader's lease, only while it still holds one. KEYS[1]: the readers (token -> end of
-- lease). ARGV[1]: the reader's token, ARGV[2]: the new lease in ms. Returns 1 when renewed, 0
-- when its lease had ended (or it was released).
local now = now_ms()
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends or tonumber(ends) <= now then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
expire_with_last(KEYS[1])
return 1
