-- Adds items to a filter: to the live generation and, while a rebuild holds its lease, to the
-- generation being built, so nothing added meanwhile is missing after the swap. With a build
-- token as target, adds to the generation being built only (a rebuild filling it), and renews
-- the rebuild's lease.
-- KEYS[1]: the metadata hash; KEYS[2], KEYS[3]: generations 'a' and 'b' (one hash tag).
-- ARGV: backend, bits and hashes as the caller opened the filter, the target ('live' or a build
-- token), the lease (ms), then for a bitmap every item's `hashes` positions, for RedisBloom the
-- items.
-- Returns per item 1 when it was new (to the live generation, or to the target), else 0; every
-- item 1 when the filter is not built (or lost its data) and no rebuild runs (the rebuild to
-- come reads them from the source); -1 when the stored parameters are not the caller's (it must open the filter
-- again); -2 when the target rebuild was overtaken by another (or its data is gone).
local meta = redis.call('HMGET', KEYS[1], 'backend', 'bits', 'hashes', 'active', 'building', 'token', 'leaseUntil')
local target = ARGV[4]
if not meta[1] then return target == 'live' and false or -2 end
if meta[1] ~= ARGV[1] or meta[2] ~= ARGV[2] or meta[3] ~= ARGV[3] then return -1 end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local function keyOf(slot) return slot == 'a' and KEYS[2] or KEYS[3] end
-- A generation's key exists from the moment it is made: a missing one lost its data, and
-- writing to it would make a filter of the new items alone (hiding every earlier one).
local function kept(slot) return slot ~= '' and redis.call('EXISTS', keyOf(slot)) == 1 end
local slots = {}
if target == 'live' then
  if kept(meta[4]) then slots[#slots + 1] = meta[4] end
  if tonumber(meta[7] or 0) > now and kept(meta[5]) then slots[#slots + 1] = meta[5] end
else
  if meta[6] ~= target or not kept(meta[5]) then return -2 end
  slots[1] = meta[5]
  redis.call('HSET', KEYS[1], 'leaseUntil', now + tonumber(ARGV[5]))
end
local bitmap = ARGV[1] == 'bitmap'
local per = bitmap and tonumber(ARGV[3]) or 1
local count = (#ARGV - 5) / per
local added = {}
for i = 1, count do added[i] = 1 end
for s = 1, #slots do
  local key = keyOf(slots[s])
  local new = 0
  if bitmap then
    for i = 1, count do
      local fresh = 0
      for j = 1, per do
        if redis.call('SETBIT', key, ARGV[5 + (i - 1) * per + j], 1) == 0 then fresh = 1 end
      end
      new = new + fresh
      if s == 1 then added[i] = fresh end
    end
  else
    -- In slices: unpack is bounded by Lua's stack (about 8000 values).
    for from = 6, #ARGV, 1000 do
      local replies = redis.call('BF.MADD', key, unpack(ARGV, from, math.min(#ARGV, from + 999)))
      for i = 1, #replies do
        new = new + replies[i]
        if s == 1 then added[from - 6 + i] = replies[i] end
      end
    end
  end
  if new > 0 then redis.call('HINCRBY', KEYS[1], 'items:' .. slots[s], new) end
end
return added
