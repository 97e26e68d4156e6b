-- Marks an id active in one period of an activity tracker (a bitmap), and sets when it expires.
-- KEYS[1]: the period's bitmap; with string ids also KEYS[2]: the id map (id -> bit offset) and
-- KEYS[3]: the next free offset (all one slot: the tracker's hash tag).
-- ARGV[1]: when the bitmap expires (ms since the epoch); ARGV[2]: the id (string ids) or the bit
-- offset (integer ids). Returns { 1 when the bit was newly set else 0, the bit offset }.
local offset
if #KEYS == 3 then
  offset = redis.call('HGET', KEYS[2], ARGV[2])
  if not offset then
    -- SETBIT takes offsets below 2^32: refuse before anything is written.
    if tonumber(redis.call('GET', KEYS[3]) or '0') >= 4294967296 then
      return redis.error_reply('ERR activity tracker: all 2^32 bit offsets are taken')
    end
    offset = redis.call('INCR', KEYS[3]) - 1
    redis.call('HSET', KEYS[2], ARGV[2], offset)
  end
else
  offset = ARGV[2]
end
local was = redis.call('SETBIT', KEYS[1], offset, 1)
-- The expiry is the period's, the same for every mark: set with each new bit (the first bit of a
-- bitmap is new), not again when an id already marked comes back.
if was == 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return { 1 - was, tonumber(offset) }
