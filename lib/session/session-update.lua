-- Changes some data fields of a live session, leaving the others as they are (two updates of
-- different fields both survive), and optionally its user. KEYS[1]: the session key.
-- ARGV[1]: the user id to set ('' to leave it); then field/value pairs to set, then '' and the
-- fields to delete. Returns 0 when the session is gone or expired, else { 1, the user it had
-- before, its absolute deadline (its score in the user's index) }.
local now = sessionNow()
local meta = readMeta(KEYS[1])
if not meta or now >= deadlineOf(meta) then return 0 end
local previous = meta.u
-- The '' between the pairs to set and the fields to delete (past the end when none are deleted).
local separator = 2
while separator <= #ARGV and ARGV[separator] ~= '' do separator = separator + 2 end
if ARGV[1] ~= '' or meta.unpacked then
  if ARGV[1] ~= '' then meta.u = ARGV[1] end
  writeMeta(KEYS[1], meta, now, ARGV, 2, separator - 1)
else
  setFields(KEYS[1], ARGV, 2, separator - 1)
end
deleteFields(KEYS[1], ARGV, separator + 1, #ARGV)
return { 1, previous, meta.c + meta.a }
