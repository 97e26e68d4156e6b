-- Deletes a session. KEYS[1]: the session key. ARGV[1]: the user it must belong to ('' for any);
-- ARGV[2]: the writer it must come from ('store' for RedisSessionStore; '' for any).
-- Returns its user id ('' for none), or false when there was no such session.
local meta = readMeta(KEYS[1])
if not meta or (ARGV[1] ~= '' and meta.u ~= ARGV[1]) or (ARGV[2] ~= '' and meta.o ~= ARGV[2]) then return false end
redis.call('DEL', KEYS[1])
return meta.u
