-- Begins a request with an idempotency key. KEYS[1]: its record (a hash). ARGV[1]: a random
-- token for the caller, ARGV[2]: the request's fingerprint, ARGV[3]: the lease in ms.
-- Returns:
--   { 'run' }                              the key was free: the caller holds it for the lease;
--   { 'busy', pttl }                       another request with the key still runs (its lease);
--   { 'mismatch' }                         the key was used for another fingerprint;
--   { 'done', status, headers, body }      the stored response, to replay.
-- A running record lives as long as its lease (renewed while it runs): once it expires, the key
-- is free again. A record that is not a hash fails with WRONGTYPE: a bug, not a free key.
local record = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'status', 'headers', 'body')
if not record[1] then
  redis.call('HSET', KEYS[1], 'state', 'running', 'token', ARGV[1], 'fingerprint', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return { 'run' }
end
if record[2] ~= ARGV[2] then return { 'mismatch' } end
if record[1] == 'running' then return { 'busy', redis.call('PTTL', KEYS[1]) } end
return { 'done', record[3], record[4], record[5] }
