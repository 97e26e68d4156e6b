-- Counts the ids active in every period (AND) or in any (OR) of an activity tracker.
-- KEYS[1]: a scratch key, KEYS[2...]: the periods' bitmaps (one slot: the tracker's hash tag).
-- ARGV[1]: 'AND' or 'OR'. The scratch key is deleted before the script returns.
redis.call('BITOP', ARGV[1], unpack(KEYS))
local count = redis.call('BITCOUNT', KEYS[1])
redis.call('DEL', KEYS[1])
return count
