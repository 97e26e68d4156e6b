-- A write or a delete that in-flight loaders must not overwrite: bumps the generation, then sets
-- (ARGV[2] non-empty) or deletes the value.
-- KEYS[1]: value, KEYS[2]: generation. ARGV[1]: generation lease in ms, ARGV[2]: payload or '', ARGV[3]: PX.
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if ARGV[2] == '' then
  return redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
