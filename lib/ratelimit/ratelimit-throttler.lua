-- One hit of @nestjs/throttler's ThrottlerStorage.increment, with the semantics of its in-memory
-- ThrottlerStorageService, on the server's clock (TIME): each counted hit counts for its own ttl;
-- the window (timeToExpire) starts at the first hit and again at the first hit after it ended;
-- with a block, the hit that passes the limit starts a block of blockDuration, hits during the
-- block are not counted, and the first hit after it starts the count afresh; without one (a
-- blockDuration of 0), a hit over the limit is refused, not counted, until the oldest counted hit
-- expires.
-- KEYS[1]: the record, "<window end> <block end> <longest ttl>" (ms; block end 0 when not
-- blocked; longest ttl: of the hits that may still count); KEYS[2]: the counted hits, a list of
-- when each stops counting (ms), in that order. Both keys share one hash tag.
-- ARGV: ttl (ms, an integer), limit, blockDuration (ms, an integer; 0 for none).
-- Returns totalHits, timeToExpire (s), isBlocked (1 or 0), timeToBlockExpire (s; 0 when not blocked).
-- A hit is made before its window ends, with a ttl of at most the longest: every counted hit stops
-- counting by <window end> + <longest ttl>, when the list expires. So an admitted hit of a window
-- already under way costs one append, and the record is written only when the window, the block or
-- the longest ttl changes.
local ceil, max, format = math.ceil, math.max, string.format
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local ttl, limit, blockDuration = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
local record, hits = KEYS[1], KEYS[2]

local windowEnd, blockEnd, longest = now + ttl, 0, ttl
local changed = true
local stored = redis.call('GET', record)
if stored then
  local w, b, l = string.match(stored, '^(%S+) (%S+) (%S+)$')
  windowEnd, blockEnd, longest, changed = w + 0, b + 0, l + 0, false
end

-- The hits whose time is up stop counting: they are at the head of the list.
local oldest = redis.call('LINDEX', hits, 0)
while oldest and oldest + 0 <= now do
  redis.call('LPOP', hits)
  oldest = redis.call('LINDEX', hits, 0)
end
if not stored and oldest then
  -- Hits outlive the record of their window: the longest ttl must still cover them.
  longest = max(longest, redis.call('LINDEX', hits, -1) - now)
end
if windowEnd <= now then
  windowEnd, changed = now + ttl, true
end
local timeToExpire = ceil((windowEnd - now) / 1000)

local count, created
local function counted()
  count = count or (oldest and redis.call('LLEN', hits) or 0)
  return count
end

local function hit()
  local expires = now + ttl
  if ttl > longest then
    longest, changed = ttl, true
  end
  -- Shorter than the longest ttl (a ttl that varies by request): kept in order of expiry.
  local last = ttl < longest and oldest and redis.call('LINDEX', hits, -1)
  if last and last + 0 > expires then
    for _, later in ipairs(redis.call('LRANGE', hits, 0, -1)) do
      if later + 0 > expires then
        count = redis.call('LINSERT', hits, 'BEFORE', later, expires)
        break
      end
    end
  else
    count = redis.call('RPUSH', hits, expires)
  end
  created = count == 1
  oldest = oldest or expires
end

local totalHits, blocked, timeToBlockExpire
if blockDuration > 0 then
  blocked = blockEnd > 0
  if not blocked then
    hit()
    if count > limit then
      blocked, blockEnd, changed = true, now + blockDuration, true
    end
  elseif blockEnd <= now then
    -- The block is over: the count starts afresh, with this hit.
    redis.call('DEL', hits)
    oldest, blocked, blockEnd, changed = nil, false, 0, true
    hit()
  else
    counted()
  end
  totalHits = count
  timeToBlockExpire = blocked and ceil((blockEnd - now) / 1000) or 0
else
  blocked = counted() >= limit
  if blocked then
    timeToBlockExpire = oldest and ceil((oldest - now) / 1000) or timeToExpire
    totalHits = count + 1
  else
    hit()
    totalHits, timeToBlockExpire = count, 0
  end
end

-- Expiry at absolute times of TIME's clock (a relative one counts from the script's start, which
-- may be a millisecond off). The record lives as long as its window, or while blocked as long as
-- the block and the hits.
local hitsUntil = windowEnd + longest
if changed then
  local keepUntil = blockEnd > 0 and max(blockEnd, hitsUntil) or windowEnd
  redis.call('SET', record, format('%.0f %.0f %.0f', windowEnd, blockEnd, longest), 'PXAT', format('%.0f', max(keepUntil, now + 1)))
end
if (changed or created) and oldest then
  redis.call('PEXPIREAT', hits, format('%.0f', max(hitsUntil, now + 1)))
end
return { totalHits, timeToExpire, blocked and 1 or 0, timeToBlockExpire }
