-- Checks items against a filter's live generation.
-- KEYS[1]: the metadata hash. KEYS[2]: the base of the generations' keys (same hash tag).
-- ARGV: backend ('bitmap' or 'redisbloom'), then for a bitmap the number of positions per item
-- followed by every item's positions, for RedisBloom the items.
-- Returns per item 1 (might be present) or 0 (definitely absent); false when the filter has not
-- been built yet (the caller must then assume every item might be present).
local live = redis.call('HGET', KEYS[1], 'active')
if not live or live == '' then return false end
local key = KEYS[2] .. ':' .. live
if ARGV[1] ~= 'bitmap' then return redis.call('BF.MEXISTS', key, unpack(ARGV, 2)) end
local per = tonumber(ARGV[2])
local found = {}
for i = 1, (#ARGV - 2) / per do
  found[i] = 1
  for j = 0, per - 1 do
    if redis.call('GETBIT', key, ARGV[3 + (i - 1) * per + j]) == 0 then
      found[i] = 0
      break
    end
  end
end
return found
