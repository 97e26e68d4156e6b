/** Counters since startup; see `CacheService.stats()`. */
export interface CacheStats {
  /** `flushes`: how many times L1 dropped entries because invalidations may have been missed (a reconnect, a missed message, a failover). */
  l1: { hits: number; misses: number; flushes: number };
  redis: { hits: number; misses: number };
  /** Stale values served while a refresh ran (or failed). */
  staleServed: number;
  loaderCalls: number;
  /** Callers that waited for another caller's loader in this process instead of calling their own. */
  coalesced: number;
  /** Redis commands that failed; the cache then fell back to the loader. */
  errors: number;
  /** Misses answered null without the loader: the key was certainly not in its Bloom filter. */
  bloomRejected: number;
}

/**
 * The counters of a new `CacheService`, all zero. Its parts count into this one object (a plain
 * one: counting a hit is one increment).
 */
export function newCacheStats(): CacheStats {
  return {
    l1: { hits: 0, misses: 0, flushes: 0 },
    redis: { hits: 0, misses: 0 },
    staleServed: 0,
    loaderCalls: 0,
    coalesced: 0,
    errors: 0,
    bloomRejected: 0,
  };
}
