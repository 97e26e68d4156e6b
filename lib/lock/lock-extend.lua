-- Renews the lease of every key of a lock, only if the caller still holds them all.
-- KEYS: the lock keys. ARGV[1]: the holder's token, ARGV[2]: the new lease in ms.
-- Returns 1 when renewed, 0 when the lock is no longer the caller's.
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
