-- Takes a live session away in one step (for regenerate): returns its fields and deletes it, so
-- a concurrent update, destroy or regenerate of the same id finds nothing. KEYS[1]: the session
-- key. Returns nil when there is no live session, else { now, its meta fields packed, { data
-- field, value, ... } } (its data as stored: the field `j`, or a field `d:<name>` each).
local meta = readMeta(KEYS[1])
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
local now = sessionNow()
if not meta or now >= deadlineOf(meta) then return nil end
local data = {}
for i = 1, #fields, 2 do
  if fields[i] == 'j' or string.sub(fields[i], 1, 2) == 'd:' then
    data[#data + 1] = fields[i]
    data[#data + 1] = fields[i + 1]
  end
end
return { now, packMeta(meta), data }
