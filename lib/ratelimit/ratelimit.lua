-- Checks every policy of one request, and debits them all only if every one allows it: a
-- rejected request consumes nothing. The clock is the server's (TIME), never an app host's.
-- KEYS[i]: the hash of policy i (all keys of a call share one hash tag).
-- ARGV[1]: 'consume', or 'refund' (give back a debit made by an earlier call).
-- Then per policy, six numbers: algorithm (1 fixed window, 2 sliding window, 3 token bucket),
-- limit, window (ms), burst (token bucket), cost, block (ms, 0 for none).
-- Returns four integers per policy: allowed (1 or 0), remaining, reset (ms until the full quota
-- is back), retry after (ms, 0 when allowed; -1 when the cost can never fit).
-- Hash fields: w (window index), c (its count), p (the previous window's count), t (token
-- bucket: theoretical arrival time in microseconds), b (blocked until, ms).
local time = redis.call('TIME')
local nowUs = tonumber(time[1]) * 1000000 + tonumber(time[2])
local now = math.floor(nowUs / 1000)
local refund = ARGV[1] == 'refund'

local function integer(n)
  return string.format('%.0f', n)
end

local plans = {}
local allAllowed = true
local replies = {}
-- What each policy has left without this call: reported instead when the call is rejected.
local unspent = {}

for i = 1, #KEYS do
  local base = 1 + (i - 1) * 6
  local algorithm = tonumber(ARGV[base + 1])
  local limit = tonumber(ARGV[base + 2])
  local window = tonumber(ARGV[base + 3])
  local burst = tonumber(ARGV[base + 4])
  local cost = tonumber(ARGV[base + 5])
  local block = tonumber(ARGV[base + 6])
  local state = redis.call('HMGET', KEYS[i], 'w', 'c', 'p', 't', 'b')
  local w, c, p, t, blockedUntil = tonumber(state[1]), tonumber(state[2]) or 0, tonumber(state[3]) or 0, tonumber(state[4]), tonumber(state[5]) or 0
  local allowed, remaining, reset, retry
  local plan

  if algorithm == 3 then
    local interval = window * 1000 / limit
    local tolerance = burst * interval
    local tat = math.max(t or 0, nowUs)
    if refund then
      if t then plan = { 't', integer(math.max(nowUs, t - cost * interval)) } end
    else
      local newTat = tat + cost * interval
      allowed = newTat - tolerance <= nowUs
      unspent[i] = math.max(0, math.floor((tolerance - (tat - nowUs)) / interval + 1e-9))
      if allowed then
        remaining = math.floor((tolerance - (newTat - nowUs)) / interval + 1e-9)
        reset = math.ceil((newTat - nowUs) / 1000)
        retry = 0
        plan = { 't', integer(math.ceil(newTat)), reset }
      else
        remaining = unspent[i]
        reset = math.ceil((tat - nowUs) / 1000)
        retry = math.ceil((newTat - tolerance - nowUs) / 1000)
      end
    end
  else
    local index = math.floor(now / window)
    local elapsed = now - index * window
    if algorithm == 1 then
      if w ~= index then c = 0 end
      if refund then
        if w == index then plan = { 'c', math.max(0, c - cost) } end
      else
        allowed = c + cost <= limit
        unspent[i] = limit - c
        remaining = limit - c - (allowed and cost or 0)
        reset = window - elapsed
        retry = allowed and 0 or reset
        if allowed then plan = { 'w', integer(index), 'c', c + cost, 'p', 0, reset } end
      end
    else
      if refund then
        if w == index or w == index - 1 then plan = { 'c', math.max(0, c - cost) } end
      else
        local current, previous = 0, 0
        if w == index then current, previous = c, p elseif w == index - 1 then previous = c end
        local estimate = previous * (window - elapsed) / window + current
        allowed = estimate + cost <= limit
        unspent[i] = math.max(0, math.floor(limit - estimate + 1e-9))
        remaining = math.max(0, math.floor(limit - estimate - (allowed and cost or 0) + 1e-9))
        if allowed then
          retry = 0
          current = current + cost
        elseif current + cost <= limit then
          -- Wait until the previous window's weight has shrunk enough.
          retry = math.ceil(window - (limit - cost - current) * window / previous - elapsed)
        else
          -- Wait for the next window, then for this window's weight to shrink.
          retry = window - elapsed + math.max(0, math.ceil(window - (limit - cost) * window / current))
        end
        if current > 0 then reset = 2 * window - elapsed elseif previous > 0 then reset = window - elapsed else reset = 0 end
        if allowed then plan = { 'w', integer(index), 'c', current, 'p', previous, 2 * window - elapsed } end
      end
    end
  end

  if not refund then
    if blockedUntil > now then
      allowed, remaining, retry = false, 0, blockedUntil - now
      unspent[i] = 0
      reset = math.max(reset, retry)
    end
    if cost > (algorithm == 3 and burst or limit) then retry = -1 end
    if not allowed then
      allAllowed = false
      if block > 0 and blockedUntil <= now and retry >= 0 then
        redis.call('HSET', KEYS[i], 'b', integer(now + block))
        if redis.call('PTTL', KEYS[i]) < block then redis.call('PEXPIRE', KEYS[i], block) end
        retry = math.max(retry, block)
        reset = math.max(reset, block)
      end
    end
    replies[#replies + 1] = allowed and 1 or 0
    replies[#replies + 1] = remaining
    replies[#replies + 1] = reset
    replies[#replies + 1] = retry
  end
  plans[i] = plan
end

if not refund and not allAllowed then
  for i = 1, #KEYS do replies[(i - 1) * 4 + 2] = unspent[i] end
end

if refund or allAllowed then
  for i = 1, #KEYS do
    local plan = plans[i]
    if plan then
      if refund then
        redis.call('HSET', KEYS[i], plan[1], plan[2])
      else
        local ttl = plan[#plan]
        plan[#plan] = nil
        redis.call('HSET', KEYS[i], unpack(plan))
        redis.call('PEXPIRE', KEYS[i], math.max(1, ttl))
      end
    end
  end
end
return replies
