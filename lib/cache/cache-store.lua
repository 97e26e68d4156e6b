-- Stores a loaded value only if no eviction or write happened since the load began (the
-- generation is unchanged), and releases the stampede lock if this loader holds it.
-- KEYS[1]: value, KEYS[2]: generation, KEYS[3]: lock.
-- ARGV[1]: generation seen before loading, ARGV[2]: payload ('' = store nothing), ARGV[3]: PX, ARGV[4]: lock token.
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then
  redis.call('DEL', KEYS[3])
end
if ARGV[2] == '' or (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
