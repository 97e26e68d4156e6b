-- Rebuilds of a filter: a rebuild fills the generation that is not live ('a' or 'b') under a
-- token and a lease, then swaps it in. A later rebuild takes the generation over (the earlier one
-- then finds its token gone and stops).
-- KEYS[1]: the metadata hash; KEYS[2], KEYS[3]: generations 'a' and 'b' (one hash tag).
-- ARGV[1] 'begin', ARGV[2] token, ARGV[3] lease (ms), ARGV[4..8] backend, bits, hashes,
--   capacity, error rate (stored again if the metadata was lost). Returns 1, or -1 when the
--   stored parameters are not these.
-- ARGV[1] 'swap', ARGV[2] token: makes the generation live, deleting the one it replaces.
--   Returns 1, or 0 when another rebuild took over (or the generation lost its data: it is
--   dropped).
-- ARGV[1] 'abort', ARGV[2] token: drops the generation of a failed rebuild, if still its own.
-- ARGV[1] 'status': returns { live generation or '', 1 when a rebuild holds a lease, else 0 }.
local op = ARGV[1]
local meta = redis.call('HMGET', KEYS[1], 'active', 'building', 'token', 'leaseUntil')
local live, building, token = meta[1] or '', meta[2] or '', meta[3] or ''
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local function keyOf(slot) return slot == 'a' and KEYS[2] or KEYS[3] end
local function drop(slot)
  redis.call('DEL', keyOf(slot))
  redis.call('HDEL', KEYS[1], 'items:' .. slot)
end

if op == 'status' then return { live, (building ~= '' and tonumber(meta[4] or 0) > now) and 1 or 0 } end
if op == 'begin' then
  local fields = { 'backend', 'bits', 'hashes', 'capacity', 'errorRate' }
  for i = 1, #fields do redis.call('HSETNX', KEYS[1], fields[i], ARGV[3 + i]) end
  local stored = redis.call('HMGET', KEYS[1], 'backend', 'bits', 'hashes')
  if stored[1] ~= ARGV[4] or stored[2] ~= ARGV[5] or stored[3] ~= ARGV[6] then return -1 end
  local slot = live == 'a' and 'b' or 'a'
  drop(slot)
  redis.call('HSET', KEYS[1], 'active', live, 'building', slot, 'token', ARGV[2], 'leaseUntil', now + tonumber(ARGV[3]))
  -- The generation exists from now on (an empty bitmap is one zero byte): a missing key later
  -- means lost data.
  if ARGV[4] == 'redisbloom' then redis.call('BF.RESERVE', keyOf(slot), ARGV[8], ARGV[7]) else redis.call('SETBIT', keyOf(slot), 0, 0) end
  return 1
end
if token ~= ARGV[2] or building == '' then return 0 end
-- The generation lost its data while it was filled: swapping it in would hide what it held.
if op == 'swap' and redis.call('EXISTS', keyOf(building)) == 0 then op = 'abort' end
if op == 'abort' then
  drop(building)
  redis.call('HSET', KEYS[1], 'building', '', 'token', '')
  return ARGV[1] == 'abort' and 1 or 0
end
-- 'swap'
redis.call('HSET', KEYS[1], 'active', building, 'building', '', 'token', '')
if live ~= '' and live ~= building then drop(live) end
return 1
