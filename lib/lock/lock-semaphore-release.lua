-- Gives back the permits of a holder whose lease has not ended. KEYS: see
-- lock-semaphore-leases.lua. ARGV[1]: the holder's token. Returns 1 when released, 0 when the
-- permits were no longer the caller's (its lease had ended, or it had released them). The keys
-- keep their expiry: it is at least the end of every remaining lease.
dropEnded()
return forget(ARGV[1])
