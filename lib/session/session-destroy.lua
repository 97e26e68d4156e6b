-- Deletes a session. KEYS[1]: the session key. ARGV[1]: the user it must belong to ('' for any).
-- Returns its user id ('' for none), or false when there was no such session.
local user = redis.call('HGET', KEYS[1], 'u')
if not user or (ARGV[1] ~= '' and user ~= ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
return user
