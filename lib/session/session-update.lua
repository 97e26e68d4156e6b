-- Changes some data fields of a live session, leaving the others as they are (two updates of
-- different fields both survive), and optionally its user. KEYS[1]: the session key.
-- ARGV[1]: the user id to set ('' to leave it); [2] 'json' when the values are the default
-- codec's, else 'text'; then pairs of a field's name (as JSON.stringify writes it) and its value
-- (as the codec encoded it), then '' and the names of the fields to delete.
-- A session keeps the layout it was written in: its data in one field `j` (session-doc.lua), or
-- (written before it, and the store's) a field `d:<name>` each.
-- Returns 0 when the session is gone or expired, else { 1, the user it had before, its absolute
-- deadline (its score in the user's index) }.
local now = sessionNow()
local packed, doc = unpack(redis.call('HMGET', KEYS[1], 'm', 'j'))
local meta
if packed then meta = unpackMeta(packed) else meta = readMeta(KEYS[1]) end
if not meta or now >= deadlineOf(meta) then return 0 end
local previous = meta.u
-- The '' between the pairs to set and the fields to delete (past the end when none are deleted).
local separator = 3
while separator <= #ARGV and ARGV[separator] ~= '' do separator = separator + 2 end
local writesMeta = ARGV[1] ~= '' or meta.unpacked
if ARGV[1] ~= '' then meta.u = ARGV[1] end
local set, deleted = {}, {}
if doc then
  for at = 3, separator - 1, 2 do doc = spliceDoc(doc, ARGV[at], docValue(ARGV[at + 1], ARGV[2])) end
  for at = separator + 1, #ARGV do doc = spliceDoc(doc, ARGV[at], nil) end
  set = { 'j', markDoc(doc) }
else
  for at = 3, separator - 1, 2 do
    set[#set + 1] = 'd:' .. cjson.decode(ARGV[at])
    set[#set + 1] = ARGV[at + 1]
  end
  for at = separator + 1, #ARGV do deleted[#deleted + 1] = 'd:' .. cjson.decode(ARGV[at]) end
end
if writesMeta then writeMeta(KEYS[1], meta, now, set, 1, #set) else setFields(KEYS[1], set, 1, #set) end
deleteFields(KEYS[1], deleted, 1, #deleted)
return { 1, previous, meta.c + meta.a }
