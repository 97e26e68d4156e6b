-- Checks every policy of one call, and debits them all only if every one allows it: a rejected
-- call consumes nothing. The clock is the server's (TIME), never an app host's.
-- KEYS[i]: the state of policy i, a string "<a> <c> <p> <b>" (all keys of a call share one hash
-- tag): a is the window index (windows) or the theoretical arrival time in microseconds (token
-- bucket), c the count of window a, p the count of the window before, b blocked-until in ms.
-- ARGV[1]: 'refund' to give back a debit made by an earlier consume, or 'marked' for a consume
-- that may be refunded (a plain consume has no such first argument: one fewer to send, and a
-- shorter reply, on the hot path). Then per policy: its configuration
-- "<algorithm>:<limit>:<window ms>:<burst>:<block ms>:<reset>" (algorithm 1 fixed window, 2
-- sliding window, 3 token bucket; burst for the token bucket; block 0 for none; reset 1 when the
-- count starts afresh after a block), the cost, and for a refund a third argument, what the
-- consume wrote (its `a`).
-- Returns per policy: remaining, reset (ms until the full quota is back), and retry after (ms: 0
-- when the policy allows the call, more when it rejects it, -1 when the cost can never fit); a
-- 'marked' consume adds the `a` written (-1 when nothing was), for a refund.
-- Numbers are read from strings by arithmetic coercion (`s + 0`): cheaper than tonumber calls.
local floor, ceil, max, min, format, match = math.floor, math.ceil, math.max, math.min, string.format, string.match
local time = redis.call('TIME')
local nowUs = time[1] * 1000000 + time[2]
local now = floor(nowUs / 1000)
local refund, marked = ARGV[1] == 'refund', ARGV[1] == 'marked'
local first, stride = (refund or marked) and 1 or 0, refund and 3 or 2

local function serialize(a, c, p, b)
  return format('%.0f %d %d %.0f', a, c, p, b)
end

-- Policy i's configuration, cost, what a refund gives back, its stored state, and whether the
-- count starts afresh after a block (then a block that has ended leaves no state).
local function load(i)
  local base = (i - 1) * stride + first
  local algorithm, limit, window, burst, block, reset = match(ARGV[base + 1], '^(%d+):(%d+):(%d+):(%d+):(%d+):(%d)$')
  local afresh = reset == '1'
  local a, c, p, b, found = 0, 0, 0, 0, false
  local state = redis.call('GET', KEYS[i])
  if state then
    local sa, sc, sp, sb = match(state, '^(%S+) (%S+) (%S+) (%S+)$')
    if sa then a, c, p, b, found = sa + 0, sc + 0, sp + 0, sb + 0, true end
    if afresh and b > 0 and b <= now then a, c, p, b, found = 0, 0, 0, 0, false end
  end
  return algorithm + 0, limit + 0, window + 0, burst + 0, block + 0, ARGV[base + 2] + 0, refund and ARGV[base + 3] + 0, a, c, p, b, found, afresh
end

-- Gives back policy i's debit: only what of a token-bucket debit has not drained yet, and only
-- from the window the debit went to.
local function giveBack(i)
  local algorithm, limit, window, _, _, cost, written, a, c, p, b, found = load(i)
  if not found then return end
  if algorithm == 3 then
    local back = min(cost * window * 1000 / limit, max(0, written - nowUs))
    if back > 0 then redis.call('SET', KEYS[i], serialize(max(nowUs, a - back), c, p, b), 'KEEPTTL') end
  elseif a == written then
    redis.call('SET', KEYS[i], serialize(a, max(0, c - cost), p, b), 'KEEPTTL')
  elseif algorithm == 2 and a == written + 1 then
    -- A later window began since: the debit is now the previous window's count.
    redis.call('SET', KEYS[i], serialize(a, c, max(0, p - cost), b), 'KEEPTTL')
  end
end

-- Decides policy i. Returns allowed, remaining, reset, retry, the marker written, what it has
-- left without this call, and the state to write with its TTL (nil when there is none; false to
-- keep the key's TTL): a pass writes only if the whole call passes, a new block always.
local function decide(i)
  local algorithm, limit, window, burst, block, cost, _, a, c, p, b, found, afresh = load(i)
  local allowed, remaining, reset, retry, keep, unspent, state, ttl
  local marker = -1

  if algorithm == 3 then
    local interval = window * 1000 / limit
    local tolerance = burst * interval
    local tat = max(a, nowUs)
    local newTat = tat + cost * interval
    allowed = newTat - tolerance <= nowUs
    unspent = max(0, floor((tolerance - (tat - nowUs)) / interval + 1e-9))
    keep = ceil((tat - nowUs) / 1000)
    if allowed then
      marker = ceil(newTat)
      remaining = floor((tolerance - (newTat - nowUs)) / interval + 1e-9)
      reset = ceil((newTat - nowUs) / 1000)
      retry = 0
      state, ttl = serialize(marker, 0, 0, 0), reset
    else
      remaining = unspent
      reset = keep
      retry = ceil((newTat - tolerance - nowUs) / 1000)
    end
  else
    local index = floor(now / window)
    local elapsed = now - index * window
    if algorithm == 1 then
      local current = (a == index) and c or 0
      allowed = current + cost <= limit
      unspent = max(0, limit - current)
      remaining = max(0, limit - current - (allowed and cost or 0))
      reset = window - elapsed
      retry = allowed and 0 or reset
      keep = reset
      if allowed then
        marker = index
        -- A key already in this window expires at its end, or later if it blocked: keep that.
        state, ttl = serialize(index, current + cost, 0, 0), not (found and a == index) and reset
      end
    else
      local current, previous = 0, 0
      if a == index then current, previous = c, p elseif a == index - 1 then previous = c end
      local estimate = previous * (window - elapsed) / window + current
      allowed = estimate + cost <= limit
      unspent = max(0, floor(limit - estimate + 1e-9))
      remaining = max(0, floor(limit - estimate - (allowed and cost or 0) + 1e-9))
      if allowed then
        retry = 0
      elseif current + cost <= limit then
        -- Wait until the previous window's weight has shrunk enough.
        retry = max(1, ceil(window - (limit - cost - current) * window / previous - elapsed))
      else
        -- Wait for the next window, then for this window's weight to shrink.
        retry = window - elapsed + max(0, ceil(window - (limit - cost) * window / current))
      end
      local after = allowed and current + cost or current
      if after > 0 then reset = 2 * window - elapsed elseif previous > 0 then reset = window - elapsed else reset = 0 end
      keep = 2 * window - elapsed
      if allowed then
        marker = index
        state, ttl = serialize(index, after, previous, 0), not (found and a == index) and keep
      end
    end
  end

  -- When the count starts afresh after a block, the block's end alone says when a call may pass.
  if b > now then
    allowed, remaining, unspent, marker, state = false, 0, 0, -1, nil
    retry = afresh and b - now or max(retry, b - now)
    reset = afresh and retry or max(reset, retry)
  end
  if cost > (algorithm == 3 and burst or limit) then retry = -1 end
  if not allowed and block > 0 and b <= now and retry >= 0 then
    state, ttl = serialize(a, c, p, now + block), max(keep, block)
    retry = afresh and block or max(retry, block)
    reset = afresh and block or max(reset, block)
  end
  return allowed, remaining, reset, retry, marker, unspent, state, ttl
end

local function write(i, state, ttl)
  if not state then return end
  if ttl then
    redis.call('SET', KEYS[i], state, 'PX', max(1, ttl))
  else
    redis.call('SET', KEYS[i], state, 'KEEPTTL')
  end
end

if refund then
  for i = 1, #KEYS do giveBack(i) end
  return {}
end

if #KEYS == 1 then
  -- The common case, without tables: a single policy's pass or block is written as decided.
  local _, remaining, reset, retry, marker, _, state, ttl = decide(1)
  write(1, state, ttl)
  if marked then return { remaining, reset, retry, marker } end
  return { remaining, reset, retry }
end

local decisions, allAllowed = {}, true
for i = 1, #KEYS do
  decisions[i] = { decide(i) }
  if not decisions[i][1] then allAllowed = false end
end
local replies, width = {}, marked and 4 or 3
for i = 1, #KEYS do
  local allowed, remaining, reset, retry, marker, unspent, state, ttl = unpack(decisions[i], 1, 8)
  if allAllowed or not allowed then write(i, state, ttl) end
  -- Nothing was spent unless every policy passed: report what each has left without this call.
  if not allAllowed then remaining, marker = unspent, -1 end
  local at = (i - 1) * width
  replies[at + 1], replies[at + 2], replies[at + 3] = remaining, reset, retry
  if marked then replies[at + 4] = marker end
end
return replies
