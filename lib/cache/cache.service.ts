import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { BloomFilterService } from '../bloom/bloom.service.js';
import { CORE_OPTIONS } from '../core/core.constants.js';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { RedisKeys } from '../core/keys.js';
import { RedisMetrics } from '../core/metrics.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RedisTracing } from '../core/tracing.js';
import { PubSubService } from '../pubsub/pubsub.service.js';
import { StreamTransport } from './cache-stream.transport.js';
import { CacheInvalidationBus, PubSubTransport } from './cache.bus.js';
import { CacheEntries } from './cache.entries.js';
import { CacheFailures } from './cache.failures.js';
import type { BulkInvalidationOptions } from './cache.errors.js';
import { CacheInvalidation } from './cache.invalidation.js';
import { CacheKeys, escapeCachePattern } from './cache.keys.js';
import { reportCacheMetrics } from './cache.metrics.js';
import { CacheEpochs } from './cache.epochs.js';
import { L1Cache } from './cache.l1.js';
import { L1Tier, type L1Invalidations } from './cache.l1-tier.js';
import { CacheLoads, type CacheStatus } from './cache.loads.js';
import type { ResolvedCacheOptions } from './cache.options-validator.js';
import { CACHE_OPTIONS, type CacheEntryOptions } from './cache.options.js';
import { CacheReads, type CachedEntry } from './cache.reads.js';
import { scanMasters } from './cache.scan.js';
import { TrackingInvalidations } from './cache.tracking.js';
import { newCacheStats, type CacheStats } from './cache.stats.js';
import { CacheWarmer, type WarmEntry } from './cache.warm.js';

export type { CacheEntryOptions } from './cache.options.js';
export type { CacheStatus } from './cache.loads.js';
export type { CachedEntry } from './cache.reads.js';
export type { CacheStats } from './cache.stats.js';
export { escapeCachePattern } from './cache.keys.js';
export type { WarmEntry } from './cache.warm.js';

/**
 * Cache-aside over Redis, with an optional in-process L1 in front.
 *
 * - `getOrSet` calls the loader once per key per process however many callers miss at once, and,
 *   with the stampede lock (on by default), once across all instances: the others poll for the
 *   value for `stampede.wait`, then load it themselves.
 * - Stale-while-revalidate: past `ttl`, within `staleWhileRevalidate`, the stale value is served
 *   and one background refresh runs; if it fails, the stale value keeps being served (fail-safe)
 *   and the refresh is retried after a backoff.
 * - No stale write-back: a load that began before a delete or a write does not store its result.
 * - L1 (`l1: true`) hears of changes over the bus or from Redis's own tracking
 *   (`l1.invalidation`), and answers only while it has confirmed, within two heartbeats, that
 *   changes still reach it.
 * - Redis down or failing over: reads fall back to the loader (fail-open), L1 hits are still
 *   served for up to two heartbeats, writes and deletes reject with `RedisUnavailableError` (503
 *   on a controller). The outage is logged once and counted in `stats().errors`. Errors that are
 *   not outages (a WRONGTYPE on a cache key) are thrown.
 *
 * @example
 * const product = await this.cache.getOrSet(`product:${id}`, () => this.db.findProduct(id), { ttl: '10m', tags: ['products'] });
 * await this.cache.invalidateTags(['products']);
 */
@Injectable()
export class CacheService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly counters: CacheStats = newCacheStats();
  private readonly keys: CacheKeys;
  private readonly failures: CacheFailures;
  private readonly bus: CacheInvalidationBus;
  /** The bus, or Redis's tracking of the cache's keys (`l1.invalidation`). */
  private readonly l1Invalidations: L1Invalidations;
  private readonly l1: L1Tier;
  private readonly entries: CacheEntries;
  private readonly invalidation: CacheInvalidation;
  private readonly reads: CacheReads;
  private readonly redis: RedisClient;
  private readonly warmer: CacheWarmer;

  constructor(
    connections: RedisConnections,
    keys: RedisKeys,
    pubsub: PubSubService,
    @Inject(CORE_OPTIONS) options: ResolvedCoreOptions,
    @Inject(CACHE_OPTIONS) private readonly settings: ResolvedCacheOptions,
    blooms: BloomFilterService,
    metrics: RedisMetrics,
    tracing: RedisTracing,
  ) {
    // The parts are plain classes, one file each; they share the counters and the failure policy.
    const redis = (this.redis = connections.get());
    const { codec } = options;
    const logger = new Logger('RedisPatterns:Cache');
    const epochs = new CacheEpochs(redis, keys.prefix);
    this.keys = new CacheKeys(keys, epochs);
    this.failures = new CacheFailures(logger, this.counters);
    const l1 = new L1Cache(codec, settings.l1, this.counters.l1);
    const transport =
      settings.invalidation === 'stream'
        ? new StreamTransport(redis, keys.tagged('cache-invalidations'), codec, options.commandTimeoutMs)
        : new PubSubTransport(pubsub);
    this.bus = new CacheInvalidationBus(transport, l1, settings.invalidation !== false, settings.l1.heartbeatMs);
    this.l1Invalidations =
      settings.l1.invalidation === 'tracking'
        ? new TrackingInvalidations(redis, `${keys.prefix}{c:`, l1, settings.l1.heartbeatMs, options)
        : this.bus;
    this.l1 = new L1Tier(l1, this.l1Invalidations, settings, this.counters);
    this.entries = new CacheEntries(redis, codec, settings, this.l1, this.bus, this.failures);
    this.invalidation = new CacheInvalidation(redis, this.keys, epochs, this.l1, this.bus, this.keys.scanPattern('*'));
    const loaderDurations = reportCacheMetrics(metrics, this.counters, () => l1.size);
    const loads = new CacheLoads(
      this.entries,
      this.l1,
      this.invalidation,
      codec,
      settings,
      this.counters,
      this.failures,
      logger,
      loaderDurations,
      tracing,
    );
    this.warmer = new CacheWarmer(this.keys, this.entries, this.invalidation, this.l1, this.bus, this.failures);
    this.reads = new CacheReads(this.keys, this.entries, this.l1, loads, blooms, codec, settings, this.counters, this.failures);
  }

  onApplicationBootstrap(): void {
    if (this.settings.configured && this.settings.l1.enabled) this.l1Invalidations.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([this.bus.stop(), this.l1Invalidations.stop()]);
  }

  /**
   * The cached value, or undefined on a miss (a cached null is returned as null) or while Redis
   * cannot be reached.
   * @example
   * const user = await this.cache.get<User>(`user:${id}`);
   */
  async get<T = unknown>(key: string, options: Pick<CacheEntryOptions, 'l1'> = {}): Promise<T | undefined> {
    return (await this.reads.entry(key, options.l1))?.value as T | undefined;
  }

  /**
   * The cached value and when it stops being fresh (`freshUntil`, in ms since the epoch; Infinity
   * for an entry written with `ttl: Infinity`), or undefined on a miss or while Redis cannot be
   * reached. Unlike `get`, it tells a cached undefined from a miss. Within `staleWhileRevalidate`
   * the entry is returned, with a `freshUntil` in the past.
   * @example
   * const entry = await this.cache.getEntry<Rates>('fx-rates');
   * if (entry && entry.freshUntil - Date.now() < 5_000) this.refreshSoon();
   */
  async getEntry<T = unknown>(key: string, options: Pick<CacheEntryOptions, 'l1'> = {}): Promise<CachedEntry<T> | undefined> {
    return (await this.reads.entry(key, options.l1)) as CachedEntry<T> | undefined;
  }

  /** @internal As `getEntry`, with the value's JSON text as stored, from Redis or L1 (an L1 value is copied only if read), for `RedisKeyvStore`. */
  storedEntry(key: string, l1: boolean | undefined): Promise<(CachedEntry & { json?: string }) | undefined> {
    return this.reads.stored(key, l1);
  }

  /**
   * Writes a value. In-flight loaders of the key will not overwrite it, and other instances drop
   * their L1 copy.
   * @example
   * await this.cache.set(`user:${user.id}`, user, { ttl: '10m', tags: [`org:${user.orgId}`] });
   */
  set<T>(key: string, value: T, options: CacheEntryOptions<T> = {}): Promise<void> {
    return this.write(key, value, options);
  }

  /**
   * @internal As `set`, for a value `JSON.parse` made of `json`, its JSON text as `JSON.stringify`
   * writes it (for `RedisKeyvStore`): the default codec stores that text without writing it again.
   */
  setParsedJson(key: string, value: unknown, json: string, options: CacheEntryOptions): Promise<void> {
    return this.write(key, value, options, json);
  }

  private async write<T>(key: string, value: T, options: CacheEntryOptions<T>, json?: string): Promise<void> {
    const keys = this.keys.entry(this.keys.value(key));
    const entryOptions = options as CacheEntryOptions;
    const entry = this.entries.prepare(keys.value, value, entryOptions, json);
    try {
      // Tagged before the write, so a tag invalidation cannot miss the new entry.
      await this.invalidation.tag(keys.value, value, entryOptions, entry.pxMs);
      const epoch = this.l1.epoch;
      await this.entries.write(keys, entry);
      if (this.l1.uses(options.l1)) this.l1.remember(keys.value, value, entry.encoded, entry.freshUntil, epoch);
      else this.l1.delete([keys.value]);
      // Sent, not awaited (it never rejects): it leaves at once, or within a millisecond of the
      // last message, with the keys of the other writes that finished meanwhile, and other
      // instances drop their copies when Redis delivers it; its reply would only cost a round trip.
      void this.bus.announce([keys.value]);
    } catch (error) {
      this.failures.failClosed(error);
    }
  }

  /**
   * Deletes entries. A load of one of them that is in flight will not store its (older) result.
   * @returns how many entries existed.
   * @example
   * await this.cache.delete(`user:${id}`, `user-by-email:${email}`);
   */
  async delete(...keys: string[]): Promise<number> {
    const valueKeys = keys.map((key) => this.keys.value(key));
    return this.entries.delete(valueKeys).catch((error: unknown) => this.failures.failClosed(error));
  }

  /**
   * The cached value; on a miss, the loader's result, stored for the next caller. See the class
   * documentation for stampede protection, stale-while-revalidate and failure behaviour.
   * @example
   * const rates = await this.cache.getOrSet('fx-rates', () => this.fx.fetch(), { ttl: '1m', staleWhileRevalidate: '10m' });
   */
  getOrSet<T>(key: string, loader: () => T | Promise<T>, options: CacheEntryOptions<T> = {}): Promise<T> {
    // L1 hits answer without going through any async step.
    if (this.l1.uses(options.l1)) {
      const local = this.l1.get(this.keys.value(key));
      if (local) return Promise.resolve(local.value as T);
    }
    return this.reads.find(key, loader as () => unknown, options as CacheEntryOptions, false) as Promise<T>;
  }

  /**
   * `getOrSet`, also telling where the value came from (for `X-Cache` headers and the like).
   * @example
   * const { value, status } = await this.cache.lookup(key, load); // status: 'hit' | 'stale' | 'miss'
   */
  lookup<T>(key: string, loader: () => T | Promise<T>, options: CacheEntryOptions<T> = {}): Promise<{ value: T; status: CacheStatus }> {
    return this.reads.find(key, loader as () => unknown, options as CacheEntryOptions, true) as Promise<{ value: T; status: CacheStatus }>;
  }

  /**
   * Deletes every entry written with one of these tags, in Redis and in every instance's L1. It
   * works a thousand entries at a time, whatever the tag holds; a load that began before it never
   * stores its result after it, on any instance.
   * @returns how many entries were deleted.
   * @throws InvalidationIncompleteError (503) when Redis stops answering part-way, with how many
   * were deleted: calling it again finishes the job. InvalidationAbortedError when `signal` aborts.
   * @example
   * await this.cache.invalidateTags([`org:${orgId}`]);
   * await this.cache.invalidateTags(['catalog'], { onProgress: (deleted) => progress.report(deleted), signal });
   */
  async invalidateTags(tags: readonly string[], options: BulkInvalidationOptions = {}): Promise<number> {
    return this.invalidation.invalidateTags(tags, options).catch((error: unknown) => this.failures.failClosed(error));
  }

  /**
   * Deletes every entry whose key matches `pattern`, where `*` matches any run of characters and
   * `?` one character; every other character is literal, and `\*` / `\?` are a literal `*` / `?`.
   * Keys are found with SCAN on every master (never KEYS), a thousand at a time, and deleted as
   * they are found. Put user input in a pattern with {@link escapeCachePattern}, so it cannot widen
   * it. Fails and aborts as {@link invalidateTags} does.
   * @example
   * await this.cache.deleteByPattern(`search:${escapeCachePattern(userId)}:*`);
   */
  async deleteByPattern(pattern: string, options: BulkInvalidationOptions = {}): Promise<number> {
    const match = this.keys.scanPattern(pattern);
    return this.invalidation.deleteMatching(match, pattern, options).catch((error: unknown) => this.failures.failClosed(error));
  }

  /**
   * The keys of the entries matching `pattern` (read as {@link deleteByPattern} reads it), found
   * with SCAN on each master in turn, never KEYS. Each step yields the keys one SCAN returned, up to
   * about a thousand. As with SCAN, an entry that exists throughout is yielded at least once; one
   * written or deleted meanwhile may or may not be, and a key may come twice.
   * @throws RedisUnavailableError when Redis stops answering part-way.
   * @example
   * for await (const keys of this.cache.scan('report:*')) await this.archive(keys);
   */
  async *scan(pattern = '*'): AsyncGenerator<string[]> {
    const match = this.keys.scanPattern(pattern);
    try {
      for await (const valueKeys of scanMasters(this.redis, match)) yield valueKeys.map((valueKey) => this.keys.cacheKeyOf(valueKey));
    } catch (error) {
      this.failures.failClosed(error);
    }
  }

  /**
   * Deletes every entry whose key starts with `namespace` (every cache entry without one).
   * @example
   * await this.cache.clear('search:');
   */
  clear(namespace = '', options: BulkInvalidationOptions = {}): Promise<number> {
    return this.deleteByPattern(`${escapeCachePattern(namespace)}*`, options);
  }

  /**
   * Writes many entries, for example at startup, a bounded number at a time.
   * @example
   * await this.cache.warm(products.map((p) => ({ key: `product:${p.id}`, value: p, options: { tags: ['products'] } })));
   */
  warm(entries: readonly WarmEntry[]): Promise<void> {
    return this.warmer.warm(entries);
  }

  /** Counters since startup. */
  stats(): CacheStats {
    return structuredClone(this.counters);
  }
}
