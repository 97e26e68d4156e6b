-- Shared by the session scripts (loaded before each). A session's fields other than its data are
-- packed in one hash field, `m` = "c,l,i,a,e,o,u": created and last seen (ms, the server's clock),
-- idle and absolute timeouts (ms), the cookie's expiry that caps it (ms, '' for none), the writer
-- ('store' for RedisSessionStore, '' for SessionService) and, last (it may hold commas), the user
-- id ('' for none). One field instead of seven makes a read's reply seven elements shorter.
-- Sessions written by 0.1 hold them as seven fields; they are read, and packed by the next
-- write.

-- The server's clock from one TIME reading: milliseconds, and the microseconds past the last
-- millisecond as a fraction of one (two readings could straddle a millisecond).
local function sessionClock()
  local time = redis.call('TIME')
  local microseconds = tonumber(time[2])
  return tonumber(time[1]) * 1000 + math.floor(microseconds / 1000), (microseconds % 1000) / 1000
end

local function sessionNow()
  local now = sessionClock()
  return now
end

-- The meta fields packed in `packed` (the field `m`) as a table { c, l, i, a, e, o, u }, or nil
-- when they are ill-formed.
local function unpackMeta(packed)
  local c, l, i, a, e, o, u = string.match(packed, '^(%d+),(%d+),(%d+),(%d+),(%d*),(%l*),(.*)$')
  if not c then return nil end
  return { c = tonumber(c), l = tonumber(l), i = tonumber(i), a = tonumber(a), e = tonumber(e), o = o, u = u }
end

-- The session's meta fields as a table { c, l, i, a, e, o, u }, or nil when it has none (or they
-- are ill-formed).
local function readMeta(key)
  local packed = redis.call('HGET', key, 'm')
  if packed then return unpackMeta(packed) end
  local f = redis.call('HMGET', key, 'c', 'l', 'i', 'a', 'e', 'o', 'u')
  local c, l, i, a = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
  if not (c and l and i and a) then return nil end
  return { c = c, l = l, i = i, a = a, e = tonumber(f[5]), o = f[6] or '', u = f[7] or '', unpacked = true }
end

-- When the session ends: min(last seen + idle, created + absolute, the cookie's expiry).
local function deadlineOf(meta)
  return math.min(meta.l + meta.i, meta.c + meta.a, meta.e or math.huge)
end

-- One string.format for the four numbers (whole milliseconds), then plain concatenation: 0.7 us
-- against 1.75 us for a format of each field and a table.concat (a loop of 20,000 in one script).
-- The writer and the user are not formatted: a '%s' of a short string would stop at a NUL in it.
local function packMeta(meta)
  local expiry = meta.e and string.format('%d', meta.e) or ''
  return string.format('%d,%d,%d,%d,', meta.c, meta.l, meta.i, meta.a) .. expiry .. ',' .. meta.o .. ',' .. meta.u
end

-- At most this many fields are set by one HSET (its arguments go on Lua's stack).
local FIELDS_PER_HSET = 256

-- Sets the fields named and valued in list[first] to list[last] (names and values in turn), and
-- `name` = `value` with them when given, in as few HSETs as Lua's stack allows: each redis.call
-- costs the server 1-3 us beyond its command.
local function setFields(key, list, first, last, name, value)
  if name then
    local to = math.min(last, first + 2 * FIELDS_PER_HSET - 3)
    redis.call('HSET', key, name, value, unpack(list, first, to))
    first = to + 1
  end
  for from = first, last, 2 * FIELDS_PER_HSET do
    redis.call('HSET', key, unpack(list, from, math.min(last, from + 2 * FIELDS_PER_HSET - 1)))
  end
end

-- Deletes the fields named in list[first] to list[last], FIELDS_PER_HSET at a time.
local function deleteFields(key, list, first, last)
  for from = first, last, FIELDS_PER_HSET do
    redis.call('HDEL', key, unpack(list, from, math.min(last, from + FIELDS_PER_HSET - 1)))
  end
end

-- Writes the meta fields (packed; an older session's seven fields go), in the same HSET as the
-- data fields in list[first] to list[last] when given (names and values in turn), and sets the
-- key's TTL to the session's deadline, so that Redis expires it on its own clock.
local function writeMeta(key, meta, now, list, first, last)
  -- Without data fields, an empty range (of ARGV, so that no table is made).
  setFields(key, list or ARGV, first or 1, last or 0, 'm', packMeta(meta))
  if meta.unpacked then redis.call('HDEL', key, 'c', 'l', 'i', 'a', 'e', 'o', 'u') end
  redis.call('PEXPIRE', key, deadlineOf(meta) - now)
end

-- Slides the idle timeout for a read when it is due: at least `interval` ms (the touch interval)
-- after the last recorded use, or half the idle timeout for a session whose idle timeout is
-- shorter than twice that. Returns whether it slid.
local function slideWhenDue(key, meta, now, interval)
  if now - meta.l < math.min(interval, math.floor(meta.i / 2)) then return false end
  meta.l = now
  writeMeta(key, meta, now)
  return true
end
