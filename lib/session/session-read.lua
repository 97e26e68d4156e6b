-- A read of a session of SessionService, in one call: its fields, and its idle timeout slid when
-- due (see slideWhenDue), on the server's clock. The key's TTL is always the session's deadline,
-- so a key that exists holds a live session; one past its deadline by the script's clock is
-- deleted. KEYS[1]: the session key. ARGV[1]: the touch interval (ms).
-- Returns { the server's time (ms), the session's fields as HGETALL lists them }, the fields
-- followed by its packed meta field `m` as written when the read slid the timeout; the fields
-- are empty when there is no live session (or its meta fields are ill-formed).
local now = sessionNow()
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return { now, fields } end
local meta = readMeta(KEYS[1])
if not meta then return { now, {} } end
if now >= deadlineOf(meta) then
  redis.call('DEL', KEYS[1])
  return { now, {} }
end
if slideWhenDue(KEYS[1], meta, now, tonumber(ARGV[1])) then
  fields[#fields + 1] = 'm'
  fields[#fields + 1] = packMeta(meta)
end
return { now, fields }
