-- Takes every key of a lock, or none. KEYS: the lock keys, then their fence keys, in the same
-- order (all in one hash tag). ARGV[1]: the holder's token, ARGV[2]: the lease in ms.
-- Returns { fencing token, 0 } when taken; { 0, pttl of a holder's key } when one is held.
-- The fencing token is one more than the highest fence of the keys, and becomes every key's
-- fence, so each key's tokens only ever increase. Fence keys never expire.
-- A lock key holds a token: GET fails with WRONGTYPE on any other value, which is a bug to
-- report, not a holder to wait for.
local count = #KEYS / 2
for i = 1, count do
  if redis.call('GET', KEYS[i]) then
    return { 0, redis.call('PTTL', KEYS[i]) }
  end
end
local token
if count == 1 then
  token = redis.call('INCR', KEYS[2])
else
  local highest = 0
  for i = count + 1, #KEYS do highest = math.max(highest, tonumber(redis.call('GET', KEYS[i]) or '0')) end
  token = highest + 1
  for i = count + 1, #KEYS do redis.call('SET', KEYS[i], token) end
end
for i = 1, count do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return { token, 0 }
