-- Moves one pending entry of a consumer group to the dead-letter stream, atomically, and only if
-- it is still pending (no other consumer has acknowledged it meanwhile).
-- KEYS[1]: the stream; KEYS[2]: its dead-letter stream (same hash tag).
-- ARGV: group, entry id, deliveries, reason, payload, dead-letter max length, the last error ('' if none).
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
  'd', ARGV[5], 'id', ARGV[2], 'group', ARGV[1], 'deliveries', ARGV[3], 'reason', ARGV[4], 'error', ARGV[7])
return 1
