-- Claims one fire of a job for the caller, in one round trip. All keys share the job's hash tag:
-- KEYS[1] the job's state (hash: `fire`, the latest fire claimed, and while a run is under way its
-- `token`, `run`, `instance`, `started`, `catchUp`; `queued`, a fire waiting for that run),
-- KEYS[2] the run's lease (the token, expiring unless renewed), KEYS[3] the history (a list of
-- JSON runs, newest first), KEYS[4] the counts (hash).
-- ARGV: [1] the fire's scheduled instant (ms), [2] the caller's token, [3] the lease (ms),
-- [4] the caller's instance, [5] 'skip' or 'queue' (overlap), [6] the history's length,
-- [7] how long the job's keys are kept (ms), [8] '1' for a catch-up at startup.
-- Returns { outcome, the server's time in ms (instances set their clocks by it) }: 'won' (run it),
-- 'done' (this fire, or a later one, was claimed already), 'skipped' or 'queued' (a run is under
-- way), 'none' (catch-up of a job that never fired: nothing was missed).
-- The `fire` field only grows: a fire is claimed once, however late a timer or a clock is.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local fire = tonumber(ARGV[1])
local latest = tonumber(redis.call('HGET', KEYS[1], 'fire'))
if ARGV[8] == '1' and not latest then return { 'none', now } end
if latest and fire <= latest then return { 'done', now } end

local running = redis.call('HMGET', KEYS[1], 'token', 'run', 'instance', 'started', 'catchUp')
if running[1] and redis.call('EXISTS', KEYS[2]) == 0 then
  -- Its lease lapsed before it finished: the run is abandoned (not run again), and so is a fire waiting for it.
  local abandoned = { fire = tonumber(running[2]), instance = running[3], startedAt = tonumber(running[4]), outcome = 'abandoned' }
  if running[5] == '1' then abandoned.catchUp = true end
  redis.call('LPUSH', KEYS[3], cjson.encode(abandoned))
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
  redis.call('HINCRBY', KEYS[4], 'abandoned', 1)
  if redis.call('HDEL', KEYS[1], 'queued') == 1 then redis.call('HINCRBY', KEYS[4], 'skipped', 1) end
  redis.call('HDEL', KEYS[1], 'token', 'run', 'instance', 'started', 'catchUp')
  running[1] = false
end

redis.call('HSET', KEYS[1], 'fire', fire)
local outcome = 'won'
if running[1] then
  outcome = 'skipped'
  if ARGV[5] == 'queue' and redis.call('HSETNX', KEYS[1], 'queued', fire) == 1 then outcome = 'queued' end
  redis.call('HINCRBY', KEYS[4], outcome, 1)
else
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  redis.call('HSET', KEYS[1], 'token', ARGV[2], 'run', fire, 'instance', ARGV[4], 'started', now, 'catchUp', ARGV[8])
end
for _, key in ipairs({ KEYS[1], KEYS[3], KEYS[4] }) do redis.call('PEXPIRE', key, ARGV[7]) end
return { outcome, now }
