-- Saves a session of RedisSessionStore (the whole session, as session middleware saves it), or
-- touches it (without ARGV[5] and ARGV[6]: its data and user stay), on the server's clock. Either
-- is a use: it slides the idle timeout, and the cookie's expiry caps the session; a cookie that
-- has expired ends it. KEYS[1]: the session key. ARGV: [1] '1' when it may start a session ('0'
-- when the caller had read it, and for a touch: gone, it stays gone); [2] idle ttl, [3] absolute
-- ttl (ms, for a new session); [4] the cookie's expiry in ms from now ('' for a cookie without
-- one; absent for a touch that keeps the stored one); [5] the user id ('' for none); [6] the
-- session, encoded; [7] '1' when a session may take a new user only with a seat (a seat limit is
-- in force, and it has none yet).
-- Returns { outcome, the user it had before ('' for none), its absolute deadline, the server's
-- time }, where outcome is 'updated', 'created', 'ended' (a live session whose cookie has expired:
-- deleted), 'gone' (nothing live, and nothing started) or 'unseated' (nothing written: the save
-- would give it a new user, for whom the caller must first take a seat).
local now = sessionNow()
local meta = readMeta(KEYS[1])
local live = meta ~= nil and now < deadlineOf(meta)
local previous = live and meta.u or ''
if not live and ARGV[1] ~= '1' then return { 'gone', '', 0, now } end
local outcome = 'updated'
if not live then
  outcome = 'created'
  -- What is left of a dead session is not carried into the new one.
  redis.call('DEL', KEYS[1])
  meta = { c = now, i = tonumber(ARGV[2]), a = tonumber(ARGV[3]), o = 'store', u = '' }
end
if ARGV[4] then meta.e = ARGV[4] ~= '' and now + tonumber(ARGV[4]) or nil end
if meta.e and meta.e <= now then
  redis.call('DEL', KEYS[1])
  return { live and 'ended' or 'gone', previous, 0, now }
end
if ARGV[7] == '1' and ARGV[5] ~= '' and ARGV[5] ~= previous then return { 'unseated', previous, 0, now } end
meta.l = now
if ARGV[6] then
  meta.u, meta.o = ARGV[5], 'store'
  writeMeta(KEYS[1], meta, now, { 'd:sess', ARGV[6] }, 1, 2)
else
  writeMeta(KEYS[1], meta, now)
end
return { outcome, previous, meta.c + meta.a, now }
