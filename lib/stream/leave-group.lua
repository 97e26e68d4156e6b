-- Removes a consumer from its group if, and only if, it holds no pending entries: checked and
-- done atomically, so entries another process just read under the same name are never dropped.
-- KEYS[1]: the stream. ARGV: group, consumer.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then
  return 0
end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
