-- Stores a loaded value only if nothing happened to it since the load began: no write or delete
-- of the key (its generation is unchanged) and no tag, pattern or clear invalidation (the epoch
-- of its slot is unchanged; an epoch lost meanwhile counts as moved). Releases the stampede lock if
-- this loader holds it. Its three reads are one MGET: each redis.call costs the server 1-3 µs
-- beyond its command (the miss script's GETs have already refused keys of another type).
-- KEYS[1]: value, KEYS[2]: generation, KEYS[3]: lock, KEYS[4]: epoch (one slot).
-- ARGV[1]: generation seen before loading, ARGV[2]: payload ('' = store nothing), ARGV[3]: PX (0: never expires),
-- ARGV[4]: lock token, ARGV[5]: epoch seen before loading.
local found = redis.call('MGET', KEYS[3], KEYS[2], KEYS[4])
if ARGV[4] ~= '' and found[1] == ARGV[4] then
  redis.call('DEL', KEYS[3])
end
if ARGV[2] == '' or (found[2] or '0') ~= ARGV[1] or found[3] ~= ARGV[5] then
  return 0
end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
