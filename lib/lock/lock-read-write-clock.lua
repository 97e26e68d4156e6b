-- Shared by the read-write lock's scripts. Leases of readers and intents of waiting writers are
-- members of sorted sets scored by when they end, on Redis's clock (TIME), never a client's.

-- Redis's clock, in ms since the epoch.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- The latest end among a sorted set's members (nil when it has none).
local function last_end(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[1] then return tonumber(last[2]) end
  return nil
end

-- A sorted set of leases lives until its last one ends, so an abandoned one cleans itself up.
local function expire_with_last(key)
  local last = last_end(key)
  if last then redis.call('PEXPIREAT', key, last) end
end
