-- Takes a failed entry back for its retry (XCLAIM, which counts a delivery), only if this consumer
-- still holds it at the delivery that failed: no other member claimed it meanwhile. Asked of the
-- pending list, not of the entry's idle time, which Redis counts in its own whole milliseconds.
-- KEYS[1]: the stream. ARGV: group, consumer, entry id, the delivery count that failed.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #pending == 0 or tonumber(pending[1][4]) ~= tonumber(ARGV[4]) then
  return {}
end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3])
