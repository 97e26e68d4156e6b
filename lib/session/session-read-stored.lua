-- A read of a session of RedisSessionStore, in one call: the session the store saved (its data
-- field `sess`), and its idle timeout slid when due (see slideWhenDue), on the server's clock.
-- A session of SessionService is not the store's: it is left as it is. One past its deadline by
-- the script's clock is deleted. KEYS[1]: the session key. ARGV[1]: the touch
-- interval (ms).
-- A session written by 0.1 (its meta fields one each) has them packed as it is read, so that the
-- next read of it can be a plain HMGET.
-- Returns { the server's time (ms), its packed meta field `m` as it stands after the read, the
-- stored session } for a live session of the store, and { the server's time } for anything else.
local now = sessionNow()
local meta = readMeta(KEYS[1])
if not meta or meta.o ~= 'store' then return { now } end
if now >= deadlineOf(meta) then
  redis.call('DEL', KEYS[1])
  return { now }
end
local stored = redis.call('HGET', KEYS[1], 'd:sess')
if not stored then return { now } end
if not slideWhenDue(KEYS[1], meta, now, tonumber(ARGV[1])) and meta.unpacked then writeMeta(KEYS[1], meta, now) end
return { now, packMeta(meta), stored }
