-- Slides a session's idle timeout for a read, on the server's clock, when it is due: at least
-- ARGV[1] ms (the touch interval), or half the idle timeout, after the last recorded use. The
-- key's TTL is always the session's deadline, so reads in between need no script: a plain read
-- finds only live sessions. KEYS[1]: the session key. ARGV[1]: the touch interval (ms).
-- Returns the server's time (ms) when it slid the timeout, minus the server's time when it was not
-- due yet (the caller learns the clock either way), and 0 when the session is gone or expired (an
-- expired or ill-formed one is deleted).
local meta = readMeta(KEYS[1])
local now = sessionNow()
if not meta or now >= deadlineOf(meta) then
  redis.call('DEL', KEYS[1])
  return 0
end
if now - meta.l < math.min(tonumber(ARGV[1]), math.floor(meta.i / 2)) then
  -- At the touch interval, or sooner for a session whose idle timeout is shorter than twice it.
  return -now
end
meta.l = now
writeMeta(KEYS[1], meta, now)
return now
