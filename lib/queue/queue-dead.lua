-- Reads the dead list, oldest first: id, payload, attempts and last error of each dead job.
-- KEYS: dead, jobs, attempts, errors. ARGV: how many.
-- Returns a flat list: id, payload, attempts, error, id, payload... (false where missing).
local ids = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
local out = {}
for i = #ids, 1, -1 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id)
  out[#out + 1] = redis.call('HGET', KEYS[3], id)
  out[#out + 1] = redis.call('HGET', KEYS[4], id)
end
return out
