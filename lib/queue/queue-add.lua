-- Adds jobs to a queue, atomically: each job whose id is not in the queue already (waiting,
-- delayed, active or dead) is stored and made ready, or delayed on Redis's clock; ids already
-- there are left as they are (an idempotent add). Wakes waiting consumers through the signal list.
-- KEYS[1]: jobs hash; KEYS[2]: ready list; KEYS[3]: delayed sorted set; KEYS[4]: signal list.
-- ARGV[1]: delay in ms (0: ready now); then pairs of job id, encoded payload.
-- Returns, per job, 1 when it was added and 0 when its id was already in the queue.
local delay = tonumber(ARGV[1])
local dueAt = 0
if delay > 0 then
  local time = redis.call('TIME')
  dueAt = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + delay
end
local added = {}
local ready = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[1], id, ARGV[i + 1]) == 1 then
    if delay > 0 then
      redis.call('ZADD', KEYS[3], dueAt, id)
    else
      redis.call('LPUSH', KEYS[2], id)
      ready = ready + 1
    end
    added[#added + 1] = 1
  else
    added[#added + 1] = 0
  end
end
-- One signal per ready job (at most 64 waiting): each wakes one blocked consumer. A delayed job
-- signals too, so a consumer waiting for a later due time looks again.
local signals = math.min(64, ready + ((delay > 0 and #added > 0) and 1 or 0))
for _ = 1, signals do
  redis.call('LPUSH', KEYS[4], '1')
end
if signals > 0 then
  redis.call('LTRIM', KEYS[4], 0, 63)
end
return added
