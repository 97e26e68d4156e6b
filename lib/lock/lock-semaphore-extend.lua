-- Renews a holder's lease for ARGV[2] ms, only while it still holds its permits (its lease has
-- not ended). KEYS: see lock-semaphore-leases.lua. ARGV[1]: the holder's token.
-- Returns 1 when renewed, 0 when the permits are no longer the caller's.
dropEnded()
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
keepUntilLastLease()
return 1
