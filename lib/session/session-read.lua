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
-- The packed meta field is among the fields; a session written by 0.1 has its seven instead.
local meta, packed = nil, false
for at = 1, #fields, 2 do
  if fields[at] == 'm' then
    meta, packed = unpackMeta(fields[at + 1]), true
    break
  end
end
if not packed then meta = readMeta(KEYS[1]) end
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
