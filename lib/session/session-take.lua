-- Takes a live session away in one step (for regenerate): returns its fields and deletes it, so
-- a concurrent update, destroy or regenerate of the same id finds nothing. KEYS[1]: the session
-- key. Returns nil when there is no live session, else { now, field, value, ... }.
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local meta = redis.call('HMGET', KEYS[1], 'c', 'l', 'i', 'a')
local created, seen, idle, absolute = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('DEL', KEYS[1])
if not (created and seen and idle and absolute) or now >= math.min(seen + idle, created + absolute) then return nil end
return { now, fields }
