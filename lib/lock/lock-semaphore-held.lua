-- How many permits are held, once ended leases are dropped. KEYS: see lock-semaphore-leases.lua.
dropEnded()
return tonumber(redis.call('GET', KEYS[3]) or '0')
