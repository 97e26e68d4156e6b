-- Renews the lease of a running request, only if the caller still holds its key.
-- KEYS[1]: the record. ARGV[1]: the caller's token, ARGV[2]: the lease in ms.
-- Returns 1 when renewed, 0 when the key is no longer the caller's (expired, taken over, stored).
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
