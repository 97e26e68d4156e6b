-- Slides a session's idle timeout, on the server's clock, when a read finds it due: at least
-- `touch` ms (or half the idle timeout) after the last recorded read. The session expires at
-- min(last seen + idle ttl, created + absolute ttl), and its key's TTL is set to exactly that, so
-- reads in between need no script: a plain HGETALL finds only live sessions.
-- KEYS[1]: the session key. ARGV[1]: touch interval (ms).
-- Returns the server's time (ms) when it slid the timeout, minus the server's time when it was not
-- due yet (the caller learns the clock either way), and 0 when the session is gone or expired
-- (an expired one is deleted).
local meta = redis.call('HMGET', KEYS[1], 'c', 'l', 'i', 'a')
local created, seen, idle, absolute = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4])
if not (created or seen or idle or absolute) then return 0 end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
if not (created and seen and idle and absolute) or now >= math.min(seen + idle, created + absolute) then
  redis.call('DEL', KEYS[1])
  return 0
end
-- At the touch interval, or sooner for a session whose idle timeout is shorter than twice it.
if now - seen < math.min(tonumber(ARGV[1]), math.floor(idle / 2)) then return -now end
redis.call('HSET', KEYS[1], 'l', now)
redis.call('PEXPIRE', KEYS[1], math.min(idle, created + absolute - now))
return now
