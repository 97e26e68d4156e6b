-- Frees the key of a request that failed, so that a retry runs again, only if the caller still
-- holds it. KEYS[1]: the record. ARGV[1]: the caller's token. Returns 1 when freed, else 0.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
