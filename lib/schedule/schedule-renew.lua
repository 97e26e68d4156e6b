-- Renews a run's lease while the job's state still names the caller's run (no claim has found
-- it lapsed). KEYS[1] the job's state, KEYS[2] the run's lease. ARGV[1] the run's token,
-- ARGV[2] the lease (ms). Returns 1 when renewed; 0 when the run is no longer the caller's, or its
-- lease key is gone (it lapsed: the next claim records it as abandoned).
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[2], ARGV[2])
