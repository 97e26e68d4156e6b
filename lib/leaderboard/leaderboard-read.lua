-- Reads a board in one step, so ranks, pages and neighbourhoods agree at any moment.
-- KEYS[1]: the board. ARGV: order ('desc' or 'asc'), ties ('first-come' or 'shared'), then
-- 'range' with a 0-based first and last position, or 'around' with a member and a radius, or
-- 'entry' with a member.
-- Returns { member, stored score, rank, ... } (empty when 'around' or 'entry' finds no member).
-- With 'shared' ties, equal scores share the rank of the first of them (1, 2, 2, 4).
local desc, firstCome, op = ARGV[1] == 'desc', ARGV[2] == 'first-come', ARGV[3]

local function position(member)
  if desc then return redis.call('ZREVRANK', KEYS[1], member) end
  return redis.call('ZRANK', KEYS[1], member)
end

-- How many scores are strictly better than `stored` (a score as Redis returned it).
local function better(stored)
  if desc then return redis.call('ZCOUNT', KEYS[1], '(' .. stored, '+inf') end
  return redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. stored)
end

local function range(first, last)
  local reply = {}
  if last < first then return reply end
  local rows
  if desc then rows = redis.call('ZRANGE', KEYS[1], first, last, 'REV', 'WITHSCORES') else rows = redis.call('ZRANGE', KEYS[1], first, last, 'WITHSCORES') end
  local rank, previous
  for i = 1, #rows, 2 do
    local at = first + (i - 1) / 2
    if firstCome then
      rank = at + 1
    elseif rows[i + 1] ~= previous then
      rank = (previous == nil) and better(rows[i + 1]) + 1 or at + 1
    end
    previous = rows[i + 1]
    reply[#reply + 1] = rows[i]
    reply[#reply + 1] = rows[i + 1]
    reply[#reply + 1] = rank
  end
  return reply
end

if op == 'range' then return range(tonumber(ARGV[4]), tonumber(ARGV[5])) end

local member = ARGV[4]
local at = position(member)
if not at then return {} end
if op == 'entry' then
  local stored = redis.call('ZSCORE', KEYS[1], member)
  return { member, stored, firstCome and at + 1 or better(stored) + 1 }
end
-- 'around': 2 * radius + 1 entries centred on the member, shifted inwards at either end.
local radius, size = tonumber(ARGV[5]), redis.call('ZCARD', KEYS[1])
local first = math.max(0, at - radius)
local last = math.min(size - 1, first + 2 * radius)
first = math.max(0, last - 2 * radius)
return range(first, last)
