-- Deletes the keys of a lock that still hold the caller's token; others' keys are left alone.
-- KEYS: the lock keys. ARGV[1]: the holder's token. Returns how many keys were released.
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
