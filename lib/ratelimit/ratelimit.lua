-- Checks every policy of one call, and debits them all only if every one allows it: a rejected
-- call consumes nothing. The clock is the server's (TIME), never an app host's.
-- KEYS[i]: the state of policy i, a string "<a> <c> <p> <b>" (all keys of a call share one hash
-- tag): a is the window index (windows) or the theoretical arrival time in microseconds (token
-- bucket), c the count of window a, p the count of the window before, b blocked-until in ms.
-- ARGV[1]: 'refund' to give back a debit made by an earlier consume (a consume has no such
-- first argument: one fewer to send on the hot path). Then per policy three arguments: its configuration "<algorithm>:<limit>:<window ms>:<burst>:
-- <block ms>" (algorithm 1 fixed window, 2 sliding window, 3 token bucket; burst for the token
-- bucket; block 0 for none), the cost, and for a refund what the consume wrote (its `a`).
-- Returns five integers per policy: allowed (1 or 0), remaining, reset (ms until the full quota
-- is back), retry after (ms, 0 when allowed; -1 when the cost can never fit), and the `a` written
-- (-1 when nothing was), for a refund.
local time = redis.call('TIME')
local nowUs = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now = math.floor(nowUs / 1000)
local refund = ARGV[1] == 'refund'
local first = refund and 1 or 0

local function serialize(a, c, p, b)
  return string.format('%.0f', a) .. ' ' .. c .. ' ' .. p .. ' ' .. string.format('%.0f', b)
end

local replies = {}
-- Per policy: the state to write if the call passes, what it has left without this call, and
-- whether a new block must be written whatever the others decide.
local passWrites, unspent, blockWrites = {}, {}, {}
local allAllowed = true

for i = 1, #KEYS do
  local base = (i - 1) * 3 + first
  local sAlgorithm, sLimit, sWindow, sBurst, sBlock = string.match(ARGV[base + 1], '^(%d+):(%d+):(%d+):(%d+):(%d+)$')
  local algorithm, limit, window, burst, block = tonumber(sAlgorithm), tonumber(sLimit), tonumber(sWindow), tonumber(sBurst), tonumber(sBlock)
  local cost, written = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local state = redis.call('GET', KEYS[i])
  local a, c, p, b = 0, 0, 0, 0
  local found = false
  if state then
    local sa, sc, sp, sb = string.match(state, '^(%S+) (%S+) (%S+) (%S+)$')
    if sa then a, c, p, b, found = tonumber(sa), tonumber(sc), tonumber(sp), tonumber(sb), true end
  end
  local allowed, remaining, reset, retry, keep
  local marker = -1

  if algorithm == 3 then
    local interval = window * 1000 / limit
    local tolerance = burst * interval
    local tat = math.max(a, nowUs)
    if refund then
      -- Give back only what of the debit has not drained yet.
      local back = math.min(cost * interval, math.max(0, written - nowUs))
      if found and back > 0 then redis.call('SET', KEYS[i], serialize(math.max(nowUs, a - back), c, p, b), 'KEEPTTL') end
    else
      local newTat = tat + cost * interval
      allowed = newTat - tolerance <= nowUs
      unspent[i] = math.max(0, math.floor((tolerance - (tat - nowUs)) / interval + 1e-9))
      keep = math.ceil((tat - nowUs) / 1000)
      if allowed then
        marker = math.ceil(newTat)
        remaining = math.floor((tolerance - (newTat - nowUs)) / interval + 1e-9)
        reset = math.ceil((newTat - nowUs) / 1000)
        retry = 0
        passWrites[i] = { serialize(marker, 0, 0, 0), reset }
      else
        remaining = unspent[i]
        reset = keep
        retry = math.ceil((newTat - tolerance - nowUs) / 1000)
      end
    end
  else
    local index = math.floor(now / window)
    local elapsed = now - index * window
    if refund then
      if found then
        -- The debit is in `c` if no later window began since, else (sliding) in `p`.
        if a == written then
          redis.call('SET', KEYS[i], serialize(a, math.max(0, c - cost), p, b), 'KEEPTTL')
        elseif algorithm == 2 and a == written + 1 then
          redis.call('SET', KEYS[i], serialize(a, c, math.max(0, p - cost), b), 'KEEPTTL')
        end
      end
    elseif algorithm == 1 then
      local current = (a == index) and c or 0
      allowed = current + cost <= limit
      unspent[i] = math.max(0, limit - current)
      remaining = math.max(0, limit - current - (allowed and cost or 0))
      reset = window - elapsed
      retry = allowed and 0 or reset
      keep = reset
      if allowed then
        marker = index
        passWrites[i] = { serialize(index, current + cost, 0, 0), reset }
      end
    else
      local current, previous = 0, 0
      if a == index then current, previous = c, p elseif a == index - 1 then previous = c end
      local estimate = previous * (window - elapsed) / window + current
      allowed = estimate + cost <= limit
      unspent[i] = math.max(0, math.floor(limit - estimate + 1e-9))
      remaining = math.max(0, math.floor(limit - estimate - (allowed and cost or 0) + 1e-9))
      if allowed then
        retry = 0
      elseif current + cost <= limit then
        -- Wait until the previous window's weight has shrunk enough.
        retry = math.ceil(window - (limit - cost - current) * window / previous - elapsed)
      else
        -- Wait for the next window, then for this window's weight to shrink.
        retry = window - elapsed + math.max(0, math.ceil(window - (limit - cost) * window / current))
      end
      local after = allowed and current + cost or current
      if after > 0 then reset = 2 * window - elapsed elseif previous > 0 then reset = window - elapsed else reset = 0 end
      keep = 2 * window - elapsed
      if allowed then
        marker = index
        passWrites[i] = { serialize(index, after, previous, 0), keep }
      end
    end
  end

  if not refund then
    if b > now then
      allowed, remaining, unspent[i] = false, 0, 0
      retry = math.max(retry, b - now)
      reset = math.max(reset, retry)
    end
    if cost > (algorithm == 3 and burst or limit) then retry = -1 end
    if not allowed then
      allAllowed = false
      if block > 0 and b <= now and retry >= 0 then
        blockWrites[i] = { serialize(a, c, p, now + block), math.max(keep, block) }
        retry = math.max(retry, block)
        reset = math.max(reset, block)
      end
    end
    local at = (i - 1) * 5
    replies[at + 1] = allowed and 1 or 0
    replies[at + 2] = remaining
    replies[at + 3] = reset
    replies[at + 4] = retry
    replies[at + 5] = marker
  end
end

if not refund then
  for i = 1, #KEYS do
    local write = blockWrites[i] or (allAllowed and passWrites[i])
    if write then redis.call('SET', KEYS[i], write[1], 'PX', math.max(1, write[2])) end
    if not allAllowed then
      -- Nothing was spent: report what each policy has left without this call.
      replies[(i - 1) * 5 + 2] = unspent[i]
      replies[(i - 1) * 5 + 5] = -1
    end
  end
end
return replies
