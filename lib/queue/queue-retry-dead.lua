-- Moves up to ARGV[1] dead jobs, oldest first, back to the ready list with their attempts reset
-- (a fresh maxAttempts), and wakes consumers.
-- KEYS: dead, ready, attempts, errors, signal. Returns how many were moved.
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  redis.call('LPUSH', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  moved = moved + 1
end
for _ = 1, math.min(moved, 64) do
  redis.call('LPUSH', KEYS[5], '1')
end
if moved > 0 then redis.call('LTRIM', KEYS[5], 0, 63) end
return moved
