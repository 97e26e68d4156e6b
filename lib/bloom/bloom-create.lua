-- Creates a filter's metadata, once: its backend and parameters, and which generation is live.
-- KEYS[1]: the metadata hash; KEYS[2], KEYS[3]: the two generations ('a' and 'b') that rebuilds
-- alternate between (all three share one hash tag).
-- ARGV: backend ('bitmap' or 'redisbloom'), bits, hashes, capacity, error rate, and '1' when the
-- filter starts built and empty (every item will be added through it), else '0': it is not
-- built until a rebuild (or prefill) fills it.
-- Returns false when it created the metadata, else what is stored: { backend, bits, hashes,
-- capacity, error rate }, which the caller compares with its options.
if redis.call('HEXISTS', KEYS[1], 'bits') == 1 then
  return redis.call('HMGET', KEYS[1], 'backend', 'bits', 'hashes', 'capacity', 'errorRate')
end
redis.call('HSET', KEYS[1], 'backend', ARGV[1], 'bits', ARGV[2], 'hashes', ARGV[3], 'capacity', ARGV[4], 'errorRate', ARGV[5])
redis.call('HSETNX', KEYS[1], 'building', '')
redis.call('HSETNX', KEYS[1], 'token', '')
-- A rebuild may have swapped in (or begun) before the metadata was written again: keep its state.
if redis.call('HSETNX', KEYS[1], 'active', ARGV[6] == '1' and 'a' or '') == 1 and ARGV[6] == '1' then
  -- The generation exists from now on: a missing key later means lost data.
  if ARGV[1] == 'redisbloom' then redis.call('BF.RESERVE', KEYS[2], ARGV[5], ARGV[4]) else redis.call('SETBIT', KEYS[2], 0, 0) end
end
return false
