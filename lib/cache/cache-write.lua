-- A write or a delete that in-flight loaders must not overwrite: gives the key a new generation
-- (a random token, so a generation that expired or was evicted can never come back equal), then
-- sets (ARGV[3] non-empty) or deletes the value.
-- KEYS[1]: value, KEYS[2]: generation. ARGV[1]: new generation token, ARGV[2]: generation lease in ms,
-- ARGV[3]: payload or '', ARGV[4]: PX (0: the value never expires).
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == '' then
  return redis.call('UNLINK', KEYS[1])
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
