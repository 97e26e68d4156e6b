-- Gives a session a seat among its user's live sessions (maxSessionsPerUser), on the server's
-- clock, in one step with the user's index: two sessions racing for the last seat are decided one
-- after the other. Every key is in the user's slot: the index, its reservations, and the keys of
-- the user's sessions kept there (those `SessionService` makes under a limit), which this script
-- checks and deletes itself. Sessions kept in other slots (`RedisSessionStore`'s, older ones) are
-- checked by the caller, which passes what it found, and deleted by the caller when evicted.
--
-- KEYS[1]: the user's index; KEYS[2]: its reservations (sessions kept elsewhere, seated before
-- their save, which count until the save or until their reservation lapses); KEYS[3..2+n]: the
-- keys of the checked members kept in the slot (see ARGV); last, when the session is written
-- here, its key.
-- ARGV: [1] the limit, [2] 'reject' or 'evict-oldest', [3] the session's handle, [4] the handle
-- it replaces ('' for none), [5] '0' at first, '1' once the caller checked the members, '2' when
-- it also lets members it did not check be evicted (for the caller to delete); [6] n,
-- [7..6+n] the handles of the checked members kept in the slot; then m, and m handles of members
-- kept elsewhere that the caller found ended; then l, and l handles of members kept elsewhere
-- that it found live; then what takes the seat:
--   'create', idle ttl, absolute ttl, user id, field/value pairs: a new session, written here;
--   'move', its packed meta fields, field/value pairs: a regenerated session, written here;
--   'reserve', absolute ttl, reservation ttl (ms): a session kept elsewhere, saved next.
-- Returns { outcome, now, handles evicted and deleted here, handles evicted for the caller to
-- delete, detail }, outcome being 'admitted' (detail: the user's sessions now), 'rejected'
-- (detail: the live sessions counted) or 'check' (detail: the oldest members, for the caller to
-- check and call again).

-- The oldest members checked at once: a decision reads at most this many sessions.
local WINDOW = 128

-- The microseconds past `now`, as a fraction of a millisecond added to a new member's score: two
-- sessions made in the same millisecond keep the order they were made in.
local now, microseconds = sessionClock()
local index, reservations = KEYS[1], KEYS[2]
local limit, onLimit, handle, replaces = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local checkedRound, releaseUnchecked = ARGV[5] ~= '0', ARGV[5] == '2'
-- Members checked: in the slot (by key), and elsewhere (ended or live).
local keyOf, elsewhere = {}, {}
local n = tonumber(ARGV[6])
for i = 1, n do keyOf[ARGV[6 + i]] = KEYS[2 + i] end
local at = 7 + n
for _, verdict in ipairs({ 'ended', 'live' }) do
  local count = tonumber(ARGV[at])
  for i = 1, count do elsewhere[ARGV[at + i]] = verdict end
  at = at + count + 1
end
local write = ARGV[at]
local deleted, released = {}, {}

-- Each set expires with its last member.
local function keepExpiry(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last == 0 then redis.call('DEL', key) else redis.call('PEXPIREAT', key, math.floor(tonumber(last[2]))) end
end

-- The seat of the session this one replaces is its own, unless it is refused.
local replacedScore = replaces ~= '' and redis.call('ZSCORE', index, replaces)
if replacedScore then redis.call('ZREM', index, replaces) end

local function reply(outcome, detail)
  if outcome ~= 'admitted' and replacedScore then redis.call('ZADD', index, replacedScore, replaces) end
  keepExpiry(index)
  keepExpiry(reservations)
  return { outcome, now, deleted, released, detail }
end

local function admit()
  local deadline
  if write == 'create' then
    local key, absolute = KEYS[#KEYS], tonumber(ARGV[at + 2])
    writeMeta(key, { c = now, l = now, i = tonumber(ARGV[at + 1]), a = absolute, o = '', u = ARGV[at + 3] }, now, ARGV, at + 4, #ARGV)
    deadline = now + absolute
  elseif write == 'move' then
    local key = KEYS[#KEYS]
    setFields(key, ARGV, at + 2, #ARGV, 'm', ARGV[at + 1])
    local meta = readMeta(key)
    redis.call('PEXPIRE', key, math.max(1, deadlineOf(meta) - now))
    deadline = meta.c + meta.a
  else
    deadline = now + tonumber(ARGV[at + 1])
    redis.call('ZADD', reservations, now + tonumber(ARGV[at + 2]), handle)
  end
  redis.call('ZADD', index, deadline + microseconds, handle)
  return reply('admitted', redis.call('ZCARD', index))
end

local function oldest()
  return redis.call('ZRANGE', index, 0, WINDOW - 1)
end

-- Past their absolute deadline (the score), members are gone; so are lapsed reservations.
redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
redis.call('ZREMRANGEBYSCORE', reservations, '-inf', now)
local total = redis.call('ZCARD', index)
if total < limit or redis.call('ZSCORE', index, handle) then return admit() end
-- At the limit by the index: which members are live is for the checks to say.
if not checkedRound then return reply('check', oldest()) end

local window = oldest()
local live, pruned = {}, 0
for _, member in ipairs(window) do
  local key = keyOf[member]
  local gone
  if key then
    gone = redis.call('EXISTS', key) == 0
  else
    -- Kept elsewhere and found ended, unless reserved since; a member not checked (added since) is live.
    gone = elsewhere[member] == 'ended' and not redis.call('ZSCORE', reservations, member)
  end
  if gone then
    redis.call('ZREM', index, member)
    pruned = pruned + 1
  else
    live[#live + 1] = member
  end
end
-- Members past the window count as live.
local count = #live + total - #window
if count < limit then return admit() end
if onLimit == 'reject' then
  -- Pruning the window showed dead members: those past it may be dead too.
  if pruned > 0 and total > #window then return reply('check', oldest()) end
  return reply('rejected', count)
end
-- evict-oldest: the oldest live members go (the index is in order of absolute deadline: of
-- creation, for sessions with the same absolute timeout) until one seat is free. One the caller
-- did not check (added since) stops the round, unless it may be released: it is checked first,
-- so that a session kept in the slot is deleted here, with its seat.
local excess = count - limit + 1
for _, member in ipairs(live) do
  local key = keyOf[member]
  if excess == 0 or not (key or elsewhere[member] or releaseUnchecked) then break end
  redis.call('ZREM', index, member)
  redis.call('ZREM', reservations, member)
  if key then
    redis.call('DEL', key)
    deleted[#deleted + 1] = member
  else
    released[#released + 1] = member
  end
  excess = excess - 1
end
-- More to evict: the caller checks the oldest members and calls again.
if excess > 0 then return reply('check', oldest()) end
return admit()
