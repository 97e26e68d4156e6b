-- Claims one key of a write-behind target for persisting: nobody else persists it meanwhile, so
-- an older value can never be written after a newer one. Returns { 'none' } when nothing is
-- pending (a job of a write already persisted), { 'busy' } when another holds the claim, else
-- { 'ok', version, value }: the newest pending write.
-- KEYS[1]: versions, KEYS[2]: values, KEYS[3]: the key's claim; one slot.
-- ARGV[1]: the key, ARGV[2]: the claim's token, ARGV[3]: its lease in ms.
local version = redis.call('HGET', KEYS[1], ARGV[1])
if not version then return { 'none' } end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[2] then return { 'busy' } end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
return { 'ok', version, redis.call('HGET', KEYS[2], ARGV[1]) }
