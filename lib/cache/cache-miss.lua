-- The miss path in one round trip: the value if it appeared meanwhile; otherwise what a load must
-- find unchanged when it stores (the key's generation, and the bulk-invalidation epoch of its
-- slot, set to ARGV[3] if it has none: an epoch that comes back after a loss is never one seen
-- before), and the stampede lock if asked.
-- KEYS[1]: value, KEYS[2]: generation, KEYS[3]: lock, KEYS[4]: epoch (one slot).
-- ARGV[1]: lock token ('' = no lock), ARGV[2]: lock lease in ms, ARGV[3]: a new epoch.
local value = redis.call('GET', KEYS[1])
if value then
  return { 1, value }
end
local generation = redis.call('GET', KEYS[2]) or '0'
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[4], epoch)
end
local locked = 0
if ARGV[1] ~= '' and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
  locked = 1
end
return { 0, generation, locked, epoch }
