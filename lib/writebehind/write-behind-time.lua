-- The time on the master of a write-behind target's slot (ms), where its pending writes are timed.
-- KEYS[1]: the target's pending-since set (only to route the call to its slot).
local time = redis.call('TIME')
return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
