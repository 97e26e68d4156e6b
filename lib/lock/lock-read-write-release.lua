-- Releases a reader. KEYS[1]: the readers (token -> end of lease). ARGV[1]: the reader's token.
-- Returns 1 when its lease was still running, 0 when it had ended or was released already.
local now = now_ms()
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ends) <= now then return 0 end
return 1
