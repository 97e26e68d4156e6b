-- Checks items against a filter's live generation.
-- KEYS[1]: the metadata hash; KEYS[2], KEYS[3]: generations 'a' and 'b' (one hash tag).
-- ARGV: backend, bits and hashes as the caller opened the filter, then for a bitmap every item's
-- `hashes` positions, for RedisBloom the items.
-- Returns per item 1 (might be present) or 0 (certainly absent); false when the filter is not
-- built (never built, or its data is gone: the caller must assume every item might be present);
-- -1 when the stored parameters are not the caller's (it must open the filter again).
local meta = redis.call('HMGET', KEYS[1], 'backend', 'bits', 'hashes', 'active')
if not meta[1] then return false end
if meta[1] ~= ARGV[1] or meta[2] ~= ARGV[2] or meta[3] ~= ARGV[3] then return -1 end
if meta[4] == '' then return false end
local key = meta[4] == 'a' and KEYS[2] or KEYS[3]
-- Evicted or deleted: an empty filter would call everything absent.
if redis.call('EXISTS', key) == 0 then return false end
local found = {}
if ARGV[1] == 'redisbloom' then
  -- In slices: unpack is bounded by Lua's stack (about 8000 values).
  for from = 4, #ARGV, 1000 do
    local replies = redis.call('BF.MEXISTS', key, unpack(ARGV, from, math.min(#ARGV, from + 999)))
    for i = 1, #replies do found[#found + 1] = replies[i] end
  end
  return found
end
local per = tonumber(ARGV[3])
for i = 1, (#ARGV - 3) / per do
  found[i] = 1
  for j = 0, per - 1 do
    if redis.call('GETBIT', key, ARGV[3 + (i - 1) * per + j + 1]) == 0 then
      found[i] = 0
      break
    end
  end
end
return found
