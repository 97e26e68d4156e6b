-- Releases a fair lock, or takes a waiter that stops waiting out of its queues, and names the
-- waiters to wake: for each key left free, the first waiter of its queue, if the key was just
-- released or its first waiter just changed (the one before left, or its heartbeat lease ended).
-- KEYS: the n lock keys, their n queues and their n heartbeat sets (see lock-fair-queue.lua).
-- ARGV[1]: the holder's token ('' when no lock is released), ARGV[2]: the waiter leaving ('' for
-- none). Only keys that still hold the token are released.
-- Returns { how many keys were released, { the waiters to wake } }.
local n = #KEYS / 3
local token, leaving = ARGV[1], ARGV[2]
local now -- read once a line is found (a line exists only while someone waits)
local released, wake, woken = 0, {}, {}
for i = 1, n do
  local lock, queue, heartbeats = KEYS[i], KEYS[n + i], KEYS[2 * n + i]
  local freed = token ~= '' and redis.call('GET', lock) == token
  if freed then
    redis.call('DEL', lock)
    released = released + 1
  end
  if redis.call('EXISTS', queue) == 1 then
    now = now or now_ms()
    local before = first_waiter(queue)
    if leaving ~= '' then
      redis.call('ZREM', queue, leaving)
      redis.call('ZREM', heartbeats, leaving)
    end
    drop_expired(queue, heartbeats, now)
    local first = first_waiter(queue)
    if first and not woken[first] and (freed or first ~= before) and redis.call('EXISTS', lock) == 0 then
      woken[first] = true
      wake[#wake + 1] = first
    end
  end
end
return { released, wake }
