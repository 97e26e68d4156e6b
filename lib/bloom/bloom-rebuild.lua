-- Starts or ends a rebuild of a filter.
-- KEYS[1]: the metadata hash. KEYS[2]: the base of the generations' keys (same hash tag).
-- ARGV[1] 'begin': ARGV[2] is the new generation, from now on written beside the live one; a
-- rebuild it replaces is abandoned (its generation is deleted). ARGV[3..7]: backend, bits,
-- hashes, capacity and error rate, stored again if the metadata was lost (Redis restarted
-- empty, say). Returns 1.
-- ARGV[1] 'swap': makes generation ARGV[2] live and deletes the one it replaces, unless another
-- rebuild began since (then returns 0 and the caller's generation is deleted).
local building = redis.call('HGET', KEYS[1], 'building')
if ARGV[1] == 'begin' then
  if building and building ~= '' then
    redis.call('DEL', KEYS[2] .. ':' .. building)
    redis.call('HDEL', KEYS[1], 'items:' .. building)
  end
  redis.call('HSET', KEYS[1], 'building', ARGV[2])
  local fields = { 'backend', 'bits', 'hashes', 'capacity', 'errorRate' }
  for i = 1, #fields do redis.call('HSETNX', KEYS[1], fields[i], ARGV[2 + i]) end
  if ARGV[3] == 'redisbloom' then redis.call('BF.RESERVE', KEYS[2] .. ':' .. ARGV[2], ARGV[7], ARGV[6]) end
  return 1
end
if building ~= ARGV[2] then
  redis.call('DEL', KEYS[2] .. ':' .. ARGV[2])
  redis.call('HDEL', KEYS[1], 'items:' .. ARGV[2])
  return 0
end
local live = redis.call('HGET', KEYS[1], 'active')
redis.call('HSET', KEYS[1], 'active', ARGV[2], 'building', '')
if live and live ~= '' then
  redis.call('DEL', KEYS[2] .. ':' .. live)
  redis.call('HDEL', KEYS[1], 'items:' .. live)
end
return 1
