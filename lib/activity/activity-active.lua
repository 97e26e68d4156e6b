-- Whether a string id was marked in one period of an activity tracker, without giving it an offset.
-- KEYS[1]: the period's bitmap, KEYS[2]: the id map (id -> bit offset). ARGV[1]: the id.
-- Returns 1 or 0; an id never marked is 0 and stays unknown.
local offset = redis.call('HGET', KEYS[2], ARGV[1])
if not offset then return 0 end
return redis.call('GETBIT', KEYS[1], offset)
