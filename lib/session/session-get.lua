-- Reads a session, enforcing both timeouts on the server's clock: it expires at
-- min(last seen + idle ttl, created + absolute ttl). An expired one is deleted. A read at least
-- `touch` ms after the last recorded one slides the idle timeout (so most reads write nothing).
-- KEYS[1]: the session key. ARGV[1]: touch interval (ms).
-- Returns nil when there is no live session, else { now, touched (1/0), field, value, ... }.
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return nil end
local session = {}
for i = 1, #fields, 2 do session[fields[i]] = fields[i + 1] end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local created, seen = tonumber(session.c), tonumber(session.l)
local idle, absolute = tonumber(session.i), tonumber(session.a)
if not (created and seen and idle and absolute) or now >= math.min(seen + idle, created + absolute) then
  redis.call('DEL', KEYS[1])
  return nil
end
local touched = 0
-- At the touch interval, or sooner for a session whose idle timeout is shorter than twice it.
if now - seen >= math.min(tonumber(ARGV[1]), math.floor(idle / 2)) then
  redis.call('HSET', KEYS[1], 'l', now)
  redis.call('PEXPIRE', KEYS[1], math.min(idle, created + absolute - now))
  for i = 1, #fields, 2 do
    if fields[i] == 'l' then fields[i + 1] = tostring(now) end
  end
  touched = 1
end
local reply = { now, touched }
for i = 1, #fields do reply[#reply + 1] = fields[i] end
return reply
