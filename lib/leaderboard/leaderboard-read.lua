-- Reads a board in one step, so ranks, pages and neighbourhoods agree at any moment.
-- KEYS[1]: the board. ARGV: order ('desc' or 'asc'), ties ('first-come' or 'shared'), then
-- 'range' with a 0-based first and last position, or 'around' with a member and a radius, or
-- 'entry' with a member, or 'rank' with a member (shared ties only).
-- 'rank' returns the member's rank alone (-1 when it is not on the board). The others return
-- { 0-based position of the first row, its rank, { member, stored score, ... } } (no rows when
-- 'around' or 'entry' finds no member). The caller ranks the other rows by their
-- position, except that with 'shared' ties a row with the score of the one before shares its
-- rank (1, 2, 2, 4).
local desc, firstCome, op = ARGV[1] == 'desc', ARGV[2] == 'first-come', ARGV[3]

-- A shared rank alone counts the better scores: one more than their number. Answered before the
-- functions below are made, with a number rather than a row.
if op == 'rank' then
  local stored = redis.call('ZSCORE', KEYS[1], ARGV[4])
  if not stored then return -1 end
  if desc then return redis.call('ZCOUNT', KEYS[1], '(' .. stored, '+inf') + 1 end
  return redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. stored) + 1
end

local function rows(first, last)
  if desc then return redis.call('ZRANGE', KEYS[1], first, last, 'REV', 'WITHSCORES') end
  return redis.call('ZRANGE', KEYS[1], first, last, 'WITHSCORES')
end

-- The rank of the row at 0-based `position` whose stored score is `stored` (as Redis wrote it).
local function rankAt(position, stored)
  if firstCome then return position + 1 end
  if desc then return redis.call('ZCOUNT', KEYS[1], '(' .. stored, '+inf') + 1 end
  return redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. stored) + 1
end

local function range(first, last)
  local found = rows(first, last)
  if #found == 0 then return { first, 0, found } end
  return { first, rankAt(first, found[2]), found }
end

if op == 'range' then return range(tonumber(ARGV[4]), tonumber(ARGV[5])) end

local member = ARGV[4]
-- With shared ties an entry's rank counts the better scores: its position is not needed.
if op == 'entry' and not firstCome then
  local stored = redis.call('ZSCORE', KEYS[1], member)
  if not stored then return { 0, 0, {} } end
  return { 0, rankAt(0, stored), { member, stored } }
end
local at
if desc then at = redis.call('ZREVRANK', KEYS[1], member) else at = redis.call('ZRANK', KEYS[1], member) end
if not at then return { 0, 0, {} } end
if op == 'entry' then
  local stored = redis.call('ZSCORE', KEYS[1], member)
  return { at, rankAt(at, stored), { member, stored } }
end
-- 'around': 2 * radius + 1 entries centred on the member, shifted inwards at either end.
local radius, size = tonumber(ARGV[5]), redis.call('ZCARD', KEYS[1])
local first = math.max(0, at - radius)
local last = math.min(size - 1, first + 2 * radius)
first = math.max(0, last - 2 * radius)
return range(first, last)
