-- Changes some data fields of a live session, leaving the others as they are (two updates of
-- different fields both survive), and optionally its user. KEYS[1]: the session key.
-- ARGV[1]: the user id to set ('' to leave it); then field/value pairs to set, then '' and the
-- fields to delete. Returns 0 when the session is gone or expired, else { 1, the user it had
-- before, its absolute deadline (its score in the user's index) }.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local meta = redis.call('HMGET', KEYS[1], 'c', 'l', 'i', 'a', 'u')
local created, seen, idle, absolute = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4])
if not (created and seen and idle and absolute) then return 0 end
local expires = math.min(seen + idle, created + absolute)
if now >= expires then return 0 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'u', ARGV[1]) end
local i = 2
while i <= #ARGV and ARGV[i] ~= '' do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for j = i + 1, #ARGV do redis.call('HDEL', KEYS[1], ARGV[j]) end
return { 1, meta[5] or '', created + absolute }
