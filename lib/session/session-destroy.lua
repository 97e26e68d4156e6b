-- Deletes a session. KEYS[1]: the session key. Returns its user id ('' for none), or false
-- when there was no session.
local user = redis.call('HGET', KEYS[1], 'u')
if not user then return false end
redis.call('DEL', KEYS[1])
return user
