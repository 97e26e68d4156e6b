-- Changes one member's score on a board, in one step.
-- KEYS[1]: the board (a sorted set), KEYS[2]: its sequence (same hash tag), which orders
-- submissions for 'first-come' ties.
-- ARGV: mode ('best', 'replace' or 'increment'), member, value, order ('desc' or 'asc'), ties
-- ('first-come' or 'shared'), expire-at (ms, 0 for never), max size (0 for no limit).
-- With 'first-come' ties the stored score is score * 2^28 + a tie-break from the sequence
-- (earlier submissions rank first), exact while |score| < 2^25; decode with floor(stored / 2^28).
-- Returns { status, stored score (a string: the member's score afterwards, even when max size
-- dropped it), rank (1-based, -1 when not on the board) }; status 1 changed, 0 unchanged (not a
-- better score, or the same one), -1 the score would leave the exact range (or be infinite),
-- -2 the sequence is exhausted. Nothing is written on -1 or -2 (and the stored score is then
-- false for a new member).
local SEQUENCE, MAX_SCORE = 268435456, 33554431
local mode, member, value, desc, firstCome = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == 'desc', ARGV[5] == 'first-come'
local expireAt, maxSize = tonumber(ARGV[6]), tonumber(ARGV[7])

local function scoreOf(stored)
  if firstCome then return math.floor(stored / SEQUENCE) end
  return stored
end

local function rankOf(stored)
  if not stored then return -1 end
  if firstCome then
    local rank = desc and redis.call('ZREVRANK', KEYS[1], member) or redis.call('ZRANK', KEYS[1], member)
    return rank and rank + 1 or -1
  end
  -- Shared ties: one more than how many scores are strictly better.
  local text = string.format('%.17g', stored)
  if desc then return redis.call('ZCOUNT', KEYS[1], '(' .. text, '+inf') + 1 end
  return redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. text) + 1
end

local current = redis.call('ZSCORE', KEYS[1], member)
local old = current and scoreOf(tonumber(current))
local score
if mode == 'increment' then
  score = (old or 0) + value
elseif mode == 'replace' or not old or (desc and value > old) or (not desc and value < old) then
  score = value
end
if score == nil or score == old then
  -- Not better, or the same score again: the member keeps its score and its place among ties.
  return { 0, current or false, rankOf(current) }
end

if score ~= score or math.abs(score) == math.huge then return { -1, current or false, rankOf(current) } end
local stored = score
if firstCome then
  if score ~= math.floor(score) or math.abs(score) > MAX_SCORE then return { -1, current or false, rankOf(current) } end
  local sequence = redis.call('INCR', KEYS[2])
  if sequence >= SEQUENCE then
    redis.call('DECR', KEYS[2])
    return { -2, current or false, rankOf(current) }
  end
  stored = score * SEQUENCE + (desc and (SEQUENCE - 1 - sequence) or sequence)
end
redis.call('ZADD', KEYS[1], string.format('%.17g', stored), member)
if expireAt > 0 then
  redis.call('PEXPIREAT', KEYS[1], expireAt)
  if firstCome then redis.call('PEXPIREAT', KEYS[2], expireAt) end
end
if maxSize > 0 then
  -- Keep the best maxSize: the lowest scores of a 'desc' board go, the highest of an 'asc' one.
  if desc then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(maxSize + 1)) else redis.call('ZREMRANGEBYRANK', KEYS[1], maxSize, -1) end
end
local text = string.format('%.17g', stored)
return { 1, text, rankOf(redis.call('ZSCORE', KEYS[1], member)) }
