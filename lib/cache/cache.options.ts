import type { Duration } from '../core/duration.js';

/**
 * Options of the caching feature, under `cache` in the module options. Every decorator and
 * `CacheService` call can override the per-entry ones.
 *
 * @example
 * RedisPatternsModule.forRoot({
 *   connection,
 *   cache: { ttl: '5m', l1: { maxEntries: 50_000, ttl: '30s' }, stampede: { wait: '3s' } },
 * });
 */
export interface CacheOptions {
  /** How long an entry is fresh. @default '1m' */
  ttl?: Duration;
  /** Each TTL is spread by up to ± this fraction, so entries written together do not expire together. @default 0.1 */
  jitter?: number;
  /** How long after `ttl` a stale value may still be served while one refresh runs. @default 0 */
  staleWhileRevalidate?: Duration;
  /** Cache null and undefined results. @default false */
  cacheNull?: boolean;
  /** How long a cached null lives. @default '30s' */
  nullTtl?: Duration;
  /** The in-process tier in front of Redis. `false` turns it off everywhere. */
  l1?: false | L1Options;
  /** Stampede protection across instances. */
  stampede?: StampedeOptions;
  /**
   * With `l1.invalidation: 'bus'`: drop other instances' L1 entries when this one writes: over
   * pub/sub (`true` or `'pubsub'`; at most once, so L1 is cleared after a subscriber reconnect or
   * a missed message), or over a stream (`'stream'`; an instance that reconnects replays what it
   * missed, and clears L1 only if the stream was trimmed past it). `false` turns it off (L1
   * entries live out their `l1.ttl`). Leave it unset with `l1.invalidation: 'tracking'`.
   * @default true
   */
  invalidation?: boolean | 'pubsub' | 'stream';
}

/** The in-process LRU tier. */
export interface L1Options {
  /** Used by entries that ask for `l1: true`, or by all of them when `default` is true. @default 10000 */
  maxEntries?: number;
  /** Bound on the summed size of the encoded values. @default 64 MB */
  maxBytes?: number;
  /** An L1 entry lives at most this long, and never longer than its Redis entry. @default '30s' */
  ttl?: Duration;
  /** Hand every caller the same instance instead of a copy: fastest, for code that never mutates results. @default false */
  shared?: boolean;
  /** Use L1 for every entry unless it says `l1: false`. @default false */
  default?: boolean;
  /**
   * How L1 hears that an entry changed.
   * - `'bus'`: the instances tell each other about the writes they make through the cache (see
   *   `cache.invalidation`). Writes made outside the library are not heard of.
   * - `'tracking'`: Redis itself reports every change to a cache entry, whoever makes it (another
   *   service, a script, `redis-cli`, expiry, eviction, FLUSHDB): client-side caching in BCAST mode
   *   over one extra connection per server (per master on a Cluster). Needs Redis 6 or later and
   *   the CLIENT command.
   * @example
   * cache: { l1: { invalidation: 'tracking', default: true } }
   * @default 'bus'
   */
  invalidation?: 'bus' | 'tracking';
  /**
   * How often L1 checks that its invalidations still arrive (a PING of each tracking connection,
   * or a heartbeat message on the bus). L1 answers only while its last check is younger than two of
   * these: the longest an entry can be served stale when invalidations stall without the
   * connection dropping.
   * @default '1s'
   */
  heartbeat?: Duration;
}

/** Stampede protection: one loader call per key across all instances. */
export interface StampedeOptions {
  /** Take a short Redis lock on a miss, so one instance loads and the others wait. @default true */
  lock?: boolean;
  /** The lock's lease: longer than a loader usually takes. @default '10s' */
  lockTtl?: Duration;
  /** How long a waiter polls for the value before it loads it itself. @default '5s' */
  wait?: Duration;
}

/**
 * Options of one entry, for `getOrSet`, `set` and the decorators. Unset ones come from the
 * module's `cache` options.
 *
 * @example
 * { ttl: '5m', staleWhileRevalidate: '1m', tags: ['products'], l1: true }
 */
export interface CacheEntryOptions<T = unknown> {
  /**
   * How long the entry is fresh, or a function of the value. `Infinity`: it never goes stale, and
   * Redis keeps it until it is deleted, invalidated or evicted.
   * @example
   * await cache.set('feature-flags', flags, { ttl: Infinity });
   */
  ttl?: Duration | ((value: T) => Duration);
  /** Spread this entry's TTL by up to ± this fraction (0: exactly `ttl`). */
  jitter?: number;
  /** How long after `ttl` the stale value may still be served while one refresh runs. */
  staleWhileRevalidate?: Duration;
  /** Cache null and undefined results, for `nullTtl`. */
  cacheNull?: boolean;
  /** How long a cached null lives (`Infinity`, as for `ttl`: until it is deleted). */
  nullTtl?: Duration;
  /** Tags to invalidate the entry by, or a function of the value. */
  tags?: readonly string[] | ((value: T) => readonly string[]);
  /** Use the in-process tier for this entry. */
  l1?: boolean;
  /** Take the cross-instance stampede lock on a miss. */
  lock?: boolean;
  /** When it returns true for a loaded value, the value is returned but not stored. */
  unless?: (value: T) => boolean;
  /**
   * A Bloom filter (declared in the module options, or opened with `BloomFilterService.filter`)
   * that holds every key that exists: on a miss,
   * a key certainly not in it answers null without calling the loader. Give `{ filter, item }` to
   * look up something other than the key. Null results are then cached (`cacheNull` defaults to
   * true), for the false positives. A filter that is not built or not reachable lets the loader run.
   * @example
   * await cache.getOrSet(`product:${id}`, () => db.find(id), { bloom: { filter: 'products', item: id } });
   */
  bloom?: string | { filter: string; item: string };
}

/** Injection token of the resolved `cache` section (`ResolvedCacheOptions`). */
export const CACHE_OPTIONS = Symbol('RedisPatterns:CacheOptions');
