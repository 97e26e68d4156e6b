-- Stores the response of a request whose key the caller still holds, for ttl ms from now.
-- KEYS[1]: the record. ARGV[1]: the caller's token, ARGV[2]: the ttl in ms, ARGV[3]: the status
-- ('' outside HTTP), ARGV[4]: the replayed headers (JSON), ARGV[5]: the body.
-- Returns 1 when stored, 0 when the key is no longer the caller's (its lease ran out meanwhile).
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[3], 'headers', ARGV[4], 'body', ARGV[5])
redis.call('HDEL', KEYS[1], 'token')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
