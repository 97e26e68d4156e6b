-- Records the end of a run and gives its lease back; when a fire waits for it (overlap: 'queue'),
-- the caller takes that fire at once. Keys as schedule-claim.lua.
-- ARGV: [1] the run's token, [2] 'succeeded' or 'failed', [3] the error message ('' for none),
-- [4] its duration (ms), [5] its fire, [6] its instance, [7] when it started (ms), [8] '1' for a
-- catch-up, [9] the history's length, [10] how long the job's keys are kept (ms), [11] the token
-- for a waiting fire, [12] the lease (ms).
-- Returns { 'done' }, { 'lost' } when the run's lease had lapsed and another claim saw it
-- (the run is still recorded, marked `leaseLost`), or { 'queued', its fire, server time in ms }.
local run = { fire = tonumber(ARGV[5]), instance = ARGV[6], startedAt = tonumber(ARGV[7]), durationMs = tonumber(ARGV[4]), outcome = ARGV[2] }
if ARGV[3] ~= '' then run.error = ARGV[3] end
if ARGV[8] == '1' then run.catchUp = true end
local ours = redis.call('HGET', KEYS[1], 'token') == ARGV[1]
if not ours then run.leaseLost = true end
redis.call('LPUSH', KEYS[3], cjson.encode(run))
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[9]) - 1)
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[3], ARGV[10])
redis.call('PEXPIRE', KEYS[4], ARGV[10])
if not ours then return { 'lost' } end

redis.call('HDEL', KEYS[1], 'token', 'run', 'instance', 'started', 'catchUp')
local queued = redis.call('HGET', KEYS[1], 'queued')
if not queued then
  redis.call('DEL', KEYS[2])
  return { 'done' }
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('HDEL', KEYS[1], 'queued')
redis.call('SET', KEYS[2], ARGV[11], 'PX', ARGV[12])
redis.call('HSET', KEYS[1], 'token', ARGV[11], 'run', queued, 'instance', ARGV[6], 'started', now, 'catchUp', '0')
return { 'queued', queued, now }
