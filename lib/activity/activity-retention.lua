-- Of the ids active in a cohort's period, counts those active again in each later period.
-- KEYS[1]: a scratch key, KEYS[2]: the cohort's bitmap, KEYS[3...]: the later periods' bitmaps
-- (one slot: the tracker's hash tag). Returns { cohort, active in KEYS[3], active in KEYS[4], ... }.
-- The scratch key is deleted before the script returns.
local counts = { redis.call('BITCOUNT', KEYS[2]) }
for i = 3, #KEYS do
  if counts[1] == 0 then
    counts[i - 1] = 0
  else
    redis.call('BITOP', 'AND', KEYS[1], KEYS[2], KEYS[i])
    counts[i - 1] = redis.call('BITCOUNT', KEYS[1])
  end
end
redis.call('DEL', KEYS[1])
return counts
