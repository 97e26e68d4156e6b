-- Reads a session, enforcing both timeouts on the server's clock: it expires at
-- min(last seen + idle ttl, created + absolute ttl). An expired one is deleted. A read at least
-- `touch` ms (or half the idle timeout) after the last recorded one slides the idle timeout (so
-- most reads write nothing).
-- KEYS[1]: the session key. ARGV[1]: touch interval (ms).
-- Returns nil when there is no live session, else { now, touched (1/0), { field, value, ... } }.
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local created, seen, idle, absolute, seenAt
for i = 1, #fields, 2 do
  local name = fields[i]
  if name == 'c' then created = tonumber(fields[i + 1])
  elseif name == 'l' then seen, seenAt = tonumber(fields[i + 1]), i + 1
  elseif name == 'i' then idle = tonumber(fields[i + 1])
  elseif name == 'a' then absolute = tonumber(fields[i + 1]) end
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if not (created and seen and idle and absolute) or now >= math.min(seen + idle, created + absolute) then
  redis.call('DEL', KEYS[1])
  return nil
end
local touched = 0
-- At the touch interval, or sooner for a session whose idle timeout is shorter than twice it.
if now - seen >= math.min(tonumber(ARGV[1]), math.floor(idle / 2)) then
  redis.call('HSET', KEYS[1], 'l', now)
  redis.call('PEXPIRE', KEYS[1], math.min(idle, created + absolute - now))
  fields[seenAt] = tostring(now)
  touched = 1
end
return { now, touched, fields }
