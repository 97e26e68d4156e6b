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
   * Drop other instances' L1 entries when this one writes: over pub/sub (`true` or `'pubsub'`;
   * at most once, so L1 is cleared after a subscriber reconnect), or over a stream (`'stream'`;
   * an instance that reconnects replays what it missed, and clears L1 only if the stream was
   * trimmed past it). `false` turns it off.
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
