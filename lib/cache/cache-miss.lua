-- The miss path in one round trip: the value if it appeared meanwhile; otherwise the key's
-- generation (for the no-stale-write-back check) and, if asked, the stampede lock.
-- KEYS[1]: value, KEYS[2]: generation, KEYS[3]: lock (one hash tag).
-- ARGV[1]: lock token ('' = no lock), ARGV[2]: lock lease in ms.
local value = redis.call('GET', KEYS[1])
if value then
  return { 1, value }
end
local generation = redis.call('GET', KEYS[2]) or '0'
local locked = 0
if ARGV[1] ~= '' and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
  locked = 1
end
return { 0, generation, locked }
