-- Takes a tag's set aside for an invalidation, in O(1): the set is renamed to a snapshot of this
-- invalidation's own (the tag starts empty for the entries written from now on), and registered.
-- Returns every registered snapshot: this one, and those that earlier invalidations of the tag
-- have not finished (stopped part-way, or still running); the caller works through them all and
-- deletes each, with its registration, once its entries are gone.
-- KEYS[1]: the tag's set, KEYS[2]: the registry (a set of snapshot keys), KEYS[3]: the new snapshot (one slot).
if redis.call('EXISTS', KEYS[1]) == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('RENAME', KEYS[1], KEYS[3])
  redis.call('SADD', KEYS[2], KEYS[3])
  if ttl > redis.call('PTTL', KEYS[2]) then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return redis.call('SMEMBERS', KEYS[2])
