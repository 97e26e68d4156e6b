-- A background refresh takes the stampede lock, and learns what it must find unchanged when it
-- stores: the key's generation and the bulk-invalidation epoch of its slot (set to ARGV[3] if it has none).
-- KEYS[1]: generation, KEYS[2]: lock, KEYS[3]: epoch (one slot).
-- ARGV[1]: lock token, ARGV[2]: lock lease in ms, ARGV[3]: a new epoch.
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[3], epoch)
end
return { redis.call('GET', KEYS[1]) or '0', epoch }
