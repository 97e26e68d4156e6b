-- Creates a filter's metadata, once: its backend and parameters, and which generation is live.
-- KEYS[1]: the metadata hash. KEYS[2]: the base of the generations' keys (same hash tag); a
-- generation's filter is KEYS[2] .. ':' .. generation.
-- ARGV: backend ('bitmap' or 'redisbloom'), bits, hashes, capacity, error rate, the first
-- generation, and '1' to make it live at once ('0' when a prefill will build it).
-- Returns false when it created the filter, else what is stored: { backend, bits, hashes,
-- capacity, error rate }, which the caller compares with its options.
if redis.call('HEXISTS', KEYS[1], 'bits') == 1 then
  return redis.call('HMGET', KEYS[1], 'backend', 'bits', 'hashes', 'capacity', 'errorRate')
end
local live = ARGV[7] == '1' and ARGV[6] or ''
redis.call('HSET', KEYS[1], 'backend', ARGV[1], 'bits', ARGV[2], 'hashes', ARGV[3], 'capacity', ARGV[4], 'errorRate', ARGV[5])
-- A rebuild may have begun (or ended) before the metadata was written again: keep its state.
if redis.call('HSETNX', KEYS[1], 'active', live) == 0 then live = '' end
redis.call('HSETNX', KEYS[1], 'building', '')
if live ~= '' and ARGV[1] == 'redisbloom' then redis.call('BF.RESERVE', KEYS[2] .. ':' .. live, ARGV[5], ARGV[4]) end
return false
