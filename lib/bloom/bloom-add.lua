-- Adds items to a filter: to the live generation and, during a rebuild, to the one being built,
-- so nothing added meanwhile is missing after the swap. With ARGV[2] = a generation, adds to that
-- one only (a rebuild filling its new generation).
-- KEYS[1]: the metadata hash. KEYS[2]: the base of the generations' keys (same hash tag).
-- ARGV: backend ('bitmap' or 'redisbloom'), target ('live' or a generation), then for a bitmap
-- the number of positions per item followed by every item's positions, for RedisBloom the items.
-- Returns per item 1 when it was new to the live generation (or to the target), else 0.
local meta = redis.call('HMGET', KEYS[1], 'active', 'building')
local targets = {}
if ARGV[2] == 'live' then
  if meta[1] and meta[1] ~= '' then targets[#targets + 1] = meta[1] end
  if meta[2] and meta[2] ~= '' then targets[#targets + 1] = meta[2] end
else
  targets[1] = ARGV[2]
end
local bitmap = ARGV[1] == 'bitmap'
local per = bitmap and tonumber(ARGV[3]) or 1
local first = bitmap and 4 or 3
local count = (#ARGV - first + 1) / per
local added = {}
for i = 1, count do added[i] = 0 end
for t = 1, #targets do
  local key = KEYS[2] .. ':' .. targets[t]
  local new = 0
  if bitmap then
    for i = 1, count do
      local fresh = 0
      for j = 0, per - 1 do
        if redis.call('SETBIT', key, ARGV[first + (i - 1) * per + j], 1) == 0 then fresh = 1 end
      end
      new = new + fresh
      if t == 1 then added[i] = fresh end
    end
    if new > 0 then redis.call('HINCRBY', KEYS[1], 'items:' .. targets[t], new) end
  else
    local replies = redis.call('BF.MADD', key, unpack(ARGV, first))
    if t == 1 then added = replies end
  end
end
-- Not built and not building: the pending prefill will include these items.
if #targets == 0 then for i = 1, count do added[i] = 1 end end
return added
