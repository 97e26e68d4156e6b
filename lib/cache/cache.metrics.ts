import { DURATION_BUCKETS, type MetricsHistogram, type RedisMetrics } from '../core/metrics.js';
import type { CacheStats } from './cache.stats.js';

/**
 * Reports the cache's counters (the very numbers `stats()` returns, read when collected) and the
 * L1 size to `metrics`; answers the histogram of loader durations, observed by the loads.
 */
export function reportCacheMetrics(metrics: RedisMetrics, counters: CacheStats, l1Size: () => number): MetricsHistogram {
  metrics.collect({
    name: 'cache_requests_total',
    help: 'Cache lookups by tier (l1, redis) and result (hit, miss)',
    type: 'counter',
    labelNames: ['tier', 'result'],
    collect: () => [
      [{ tier: 'l1', result: 'hit' }, counters.l1.hits],
      [{ tier: 'l1', result: 'miss' }, counters.l1.misses],
      [{ tier: 'redis', result: 'hit' }, counters.redis.hits],
      [{ tier: 'redis', result: 'miss' }, counters.redis.misses],
    ],
  });
  const counts: [string, string, () => number][] = [
    ['cache_stale_served_total', 'Stale values served while a refresh ran or failed', () => counters.staleServed],
    ['cache_loader_calls_total', 'Loader calls', () => counters.loaderCalls],
    ['cache_coalesced_total', "Callers that waited for another caller's loader in this process", () => counters.coalesced],
    ['cache_errors_total', 'Redis commands of the cache that failed (the cache then fell back to the loader)', () => counters.errors],
    ['cache_bloom_rejected_total', 'Misses answered without the loader: not in their Bloom filter', () => counters.bloomRejected],
    ['cache_l1_flushes_total', 'Times L1 dropped entries because invalidations may have been missed', () => counters.l1.flushes],
  ];
  for (const [name, help, read] of counts) metrics.collect({ name, help, type: 'counter', labelNames: [], collect: () => [[{}, read()]] });
  metrics.collect({
    name: 'cache_l1_entries',
    help: 'Entries in the in-process L1',
    type: 'gauge',
    labelNames: [],
    collect: () => [[{}, l1Size()]],
  });
  return metrics.histogram({
    name: 'cache_loader_duration_seconds',
    help: 'Time of loader calls, by outcome (ok, error)',
    labelNames: ['outcome'],
    buckets: DURATION_BUCKETS,
  });
}
