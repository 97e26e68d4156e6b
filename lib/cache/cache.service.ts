import { randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { toMilliseconds, toPositiveMilliseconds, type Duration } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { BloomFilterService } from '../bloom/bloom.service.js';
import { OutageLog } from '../core/outage-log.js';
import { RedisKeys } from '../core/keys.js';
import { MaxmemoryPolicyCheck } from '../core/maxmemory-policy.check.js';
import { masterNodes, type RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RESOLVED_OPTIONS } from '../core/redis-patterns.constants.js';
import type { ResolvedRedisPatternsOptions } from '../core/redis-patterns.options.js';
import { RedisScript } from '../core/redis-script.js';
import { PubSubService } from '../pubsub/pubsub.service.js';
import { CacheInvalidationBus, globToRegExp, PubSubTransport } from './cache.bus.js';
import { StreamTransport } from './cache-stream.transport.js';
import { encodeCacheKey } from './cache-key.js';
import { packEntry, unpackEntry } from './cache.entry.js';
import { L1Cache } from './cache.l1.js';
import type { ResolvedCacheOptions } from './cache.options-validator.js';

const missScript = RedisScript.fromFile(new URL('./cache-miss.lua', import.meta.url));
const storeScript = RedisScript.fromFile(new URL('./cache-store.lua', import.meta.url));
const writeScript = RedisScript.fromFile(new URL('./cache-write.lua', import.meta.url));

/** How long an eviction's generation bump is remembered: longer than any loader runs. */
const GENERATION_TTL_MS = 3_600_000;
/** A fresh generation token for a key that is written or deleted. */
const newGeneration = () => randomBytes(9).toString('base64url');

/** The longest wait between a failed background refresh and the next attempt. */
const MAX_REFRESH_BACKOFF_MS = 30_000;
/** How many keys' refresh backoffs are remembered at most. */
const MAX_BACKOFF_ENTRIES = 10_000;

/**
 * Options of one entry, for `getOrSet`, `set` and the decorators. Unset ones come from the
 * module's `cache` options.
 *
 * @example
 * { ttl: '5m', staleWhileRevalidate: '1m', tags: ['products'], l1: true }
 */
export interface CacheEntryOptions<T = unknown> {
  /** How long the entry is fresh, or a function of the value. */
  ttl?: Duration | ((value: T) => Duration);
  /** How long after `ttl` the stale value may still be served while one refresh runs. */
  staleWhileRevalidate?: Duration;
  /** Cache null and undefined results, for `nullTtl`. */
  cacheNull?: boolean;
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

/** Counters since startup; see `CacheService.stats()`. */
export interface CacheStats {
  l1: { hits: number; misses: number };
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

/** One entry to write with `warm()`. */
export interface WarmEntry<T = unknown> {
  key: string;
  value: T;
  options?: CacheEntryOptions<T>;
}

interface EntryKeys {
  value: string;
  generation: string;
  lock: string;
}

/** What decodeOrDrop returns for an entry the codec cannot read. */
const UNREADABLE = Symbol('unreadable');

/** Where a value came from: the cache (fresh), the cache past its ttl (stale), or the loader. */
export type CacheStatus = 'hit' | 'stale' | 'miss';

/** What a load settles with: the value, its encoding when it was stored (to copy from), and where it came from. */
interface Loaded {
  value: unknown;
  encoded?: string | Buffer;
  status: CacheStatus;
}

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
 * - Redis down: reads fall back to the loader (fail-open), L1 hits are still served, writes and
 *   deletes reject. The outage is logged once and counted in `stats().errors`.
 *
 * @example
 * const product = await this.cache.getOrSet(`product:${id}`, () => this.db.findProduct(id), { ttl: '10m', tags: ['products'] });
 * await this.cache.invalidateTags(['products']);
 */
@Injectable()
export class CacheService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns:Cache');
  private readonly outage = new OutageLog(this.logger, (reason) => `Redis is unavailable to the cache (${reason}); calling loaders directly until it is back`, 'Redis is available to the cache again');
  private readonly settings: ResolvedCacheOptions;
  private readonly l1: L1Cache;
  private readonly bus: CacheInvalidationBus;
  private readonly inFlight = new Map<string, Promise<Loaded>>();
  private readonly refreshing = new Set<string>();
  private readonly refreshBackoff = new Map<string, { until: number; delayMs: number }>();
  private readonly counters: CacheStats = { l1: { hits: 0, misses: 0 }, redis: { hits: 0, misses: 0 }, staleServed: 0, loaderCalls: 0, coalesced: 0, errors: 0, bloomRejected: 0 };
  /**
   * Counts tag, pattern and clear invalidations, made here or (over the bus) by another instance.
   * A load stores its result only if none happened since it began: such an invalidation may have
   * covered the entry before it existed.
   */
  private bulkEpoch = 0;
  /** The main connection, looked up once. */
  private readonly redis: RedisClient;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    pubsub: PubSubService,
    maxmemoryPolicy: MaxmemoryPolicyCheck,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedRedisPatternsOptions,
    private readonly blooms: BloomFilterService,
  ) {
    this.settings = options.cache;
    this.redis = connections.get();
    if (this.settings.configured) maxmemoryPolicy.declare('cache', 'evictable');
    this.l1 = new L1Cache(options.codec, this.settings.l1);
    const transport =
      this.settings.invalidation === 'stream'
        ? new StreamTransport(this.redis, keys.tagged('cache-invalidations'), options.codec, options.commandTimeoutMs)
        : new PubSubTransport(pubsub);
    this.bus = new CacheInvalidationBus(transport, this.l1, this.settings.invalidation !== false, () => this.bulkInvalidated());
  }

  onApplicationBootstrap(): void {
    if (this.settings.configured && this.settings.l1.enabled && this.settings.invalidation) this.bus.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.bus.stop();
  }

  /**
   * The cached value, or undefined on a miss (a cached null is returned as null) or while Redis
   * cannot be reached.
   * @example
   * const user = await this.cache.get<User>(`user:${id}`);
   */
  async get<T = unknown>(key: string, options: Pick<CacheEntryOptions, 'l1'> = {}): Promise<T | undefined> {
    const keys = this.entryKeys(this.valueKey(key));
    const useL1 = this.usesL1(options.l1);
    const local = useL1 ? this.l1Get(keys.value) : undefined;
    if (local) return local.value as T;
    const epoch = this.l1.epoch;
    let raw: string | Buffer | null;
    try {
      raw = await this.readRedis(keys.value);
    } catch (error) {
      // Fail-open, like getOrSet: with Redis away, a read is a miss.
      this.noteRedisError(error);
      return undefined;
    }
    const entry = raw === null ? undefined : unpackEntry(raw);
    const value = entry ? this.decodeOrDrop(keys.value, entry.encoded) : UNREADABLE;
    if (!entry || value === UNREADABLE) return undefined;
    if (useL1) this.remember(keys.value, value, entry.encoded, entry.freshUntil, epoch);
    return value as T;
  }

  /**
   * Writes a value. In-flight loaders of the key will not overwrite it, and other instances drop
   * their L1 copy.
   * @example
   * await this.cache.set(`user:${user.id}`, user, { ttl: '10m', tags: [`org:${user.orgId}`] });
   */
  async set<T>(key: string, value: T, options: CacheEntryOptions<T> = {}): Promise<void> {
    const keys = this.entryKeys(this.valueKey(key));
    const entryOptions = options as CacheEntryOptions;
    const { payload, pxMs, freshUntil, encoded } = this.prepare(keys.value, value, entryOptions);
    // Tagged before the write, so a tag invalidation cannot miss the new entry.
    await this.tag(keys.value, value, entryOptions, pxMs);
    await writeScript.run(this.client(), [keys.value, keys.generation], [newGeneration(), GENERATION_TTL_MS, payload, pxMs]);
    if (this.usesL1(options.l1)) this.remember(keys.value, value, encoded, freshUntil);
    else this.l1.delete([keys.value]);
    await this.bus.publish({ keys: [keys.value] });
  }

  /**
   * Deletes entries. A load of one of them that is in flight will not store its (older) result.
   * @returns how many entries existed.
   * @example
   * await this.cache.delete(`user:${id}`, `user-by-email:${email}`);
   */
  async delete(...keys: string[]): Promise<number> {
    return this.deleteRedisKeys(keys.map((key) => this.valueKey(key)));
  }

  /**
   * The cached value; on a miss, the loader's result, stored for the next caller. See the class
   * documentation for stampede protection, stale-while-revalidate and failure behaviour.
   * @example
   * const rates = await this.cache.getOrSet('fx-rates', () => this.fx.fetch(), { ttl: '1m', staleWhileRevalidate: '10m' });
   */
  getOrSet<T>(key: string, loader: () => T | Promise<T>, options: CacheEntryOptions<T> = {}): Promise<T> {
    // L1 hits answer without going through any async step.
    if (this.usesL1(options.l1)) {
      const local = this.l1Get(this.valueKey(key));
      if (local) return Promise.resolve(local.value as T);
    }
    return this.find(key, loader as () => unknown, options as CacheEntryOptions, false) as Promise<T>;
  }

  /**
   * `getOrSet`, also telling where the value came from (for `X-Cache` headers and the like).
   * @example
   * const { value, status } = await this.cache.lookup(key, load); // status: 'hit' | 'stale' | 'miss'
   */
  lookup<T>(key: string, loader: () => T | Promise<T>, options: CacheEntryOptions<T> = {}): Promise<{ value: T; status: CacheStatus }> {
    return this.find(key, loader as () => unknown, options as CacheEntryOptions, true) as Promise<{ value: T; status: CacheStatus }>;
  }

  /** The read path of getOrSet and lookup: one GET on a hit; only a miss (or an outage) goes through the per-key single flight. */
  private async find(key: string, loader: () => unknown, options: CacheEntryOptions, withStatus: boolean): Promise<unknown> {
    const valueKey = this.valueKey(key);
    const useL1 = this.usesL1(options.l1);
    const local = useL1 ? this.l1Get(valueKey) : undefined;
    if (local) return withStatus ? { value: local.value, status: 'hit' } : local.value;

    const pending = this.inFlight.get(valueKey);
    if (pending) return this.join(pending, valueKey, withStatus);
    const epoch = this.l1.epoch;
    let raw: string | Buffer | null;
    try {
      const client = this.client();
      raw = await (this.options.codec.binary ? client.getBuffer(valueKey) : client.get(valueKey));
      this.outage.succeeded();
    } catch (error) {
      this.noteRedisError(error);
      // Redis is away: still one loader call per key in this process.
      const joined = this.inFlight.get(valueKey);
      if (joined) return this.join(joined, valueKey, withStatus);
      return this.singleFlight(valueKey, () => this.callLoader(loader), withStatus);
    }
    const entry = raw === null ? undefined : unpackEntry(raw);
    const value = entry ? this.decodeOrDrop(valueKey, entry.encoded) : UNREADABLE;
    if (entry && value !== UNREADABLE) {
      if (entry.freshUntil > Date.now()) {
        this.counters.redis.hits++;
        if (useL1) this.remember(valueKey, value, entry.encoded, entry.freshUntil, epoch);
        return withStatus ? { value, status: 'hit' } : value;
      }
      this.counters.staleServed++;
      this.refreshInBackground(this.entryKeys(valueKey), loader, options);
      return withStatus ? { value, status: 'stale' } : value;
    }
    this.counters.redis.misses++;
    const loading = this.inFlight.get(valueKey);
    if (loading) return this.join(loading, valueKey, withStatus);
    if (options.bloom !== undefined && !(await this.bloomAllows(key, options.bloom))) {
      this.counters.bloomRejected++;
      return withStatus ? { value: null, status: 'miss' } : null;
    }
    return this.singleFlight(valueKey, () => this.loadAndStore(this.entryKeys(valueKey), loader, options, useL1), withStatus);
  }

  /**
   * Deletes every entry written with one of these tags, in Redis and in every instance's L1.
   * @returns how many entries were deleted.
   * @example
   * await this.cache.invalidateTags([`org:${orgId}`]);
   */
  async invalidateTags(tags: readonly string[]): Promise<number> {
    this.bulkInvalidated();
    let deleted = 0;
    const deletedKeys: string[] = [];
    for (const tag of tags) {
      const tagKey = this.tagKey(tag);
      const members = await this.client().zrange(tagKey, '0', '-1');
      if (members.length === 0) continue;
      // Only the members seen, and before deleting them: an entry tagged meanwhile stays in the set.
      await this.client().zrem(tagKey, ...members);
      deleted += await this.deleteRedisKeys(members, false);
      deletedKeys.push(...members);
    }
    await this.bus.publish({ keys: deletedKeys, bulk: true });
    return deleted;
  }

  /**
   * Deletes every entry whose key matches `pattern`, where `*` matches any run of characters and
   * `?` one character; every other character is literal, and `\*` / `\?` are a literal `*` / `?`.
   * Keys are found with SCAN on every master (never KEYS). Put user input in a pattern with
   * {@link escapeCachePattern}, so it cannot widen it.
   * @example
   * await this.cache.deleteByPattern(`search:${escapeCachePattern(userId)}:*`);
   */
  async deleteByPattern(pattern: string): Promise<number> {
    const match = this.scanPattern(pattern);
    this.bulkInvalidated();
    const found = new Set<string>();
    for (const node of masterNodes(this.client())) {
      for await (const batch of node.scanStream({ match, count: 500 })) for (const key of batch as string[]) found.add(key);
    }
    const deleted = found.size === 0 ? 0 : await this.deleteRedisKeys([...found], false);
    this.l1.deleteMatching(globToRegExp(match));
    await this.bus.publish({ pattern: match, bulk: true });
    return deleted;
  }

  /**
   * Deletes every entry whose key starts with `namespace` (every cache entry without one).
   * @example
   * await this.cache.clear('search:');
   */
  clear(namespace = ''): Promise<number> {
    return this.deleteByPattern(`${escapeCachePattern(namespace)}*`);
  }

  /**
   * Writes many entries, for example at startup.
   * @example
   * await this.cache.warm(products.map((p) => ({ key: `product:${p.id}`, value: p, options: { tags: ['products'] } })));
   */
  async warm(entries: readonly WarmEntry[]): Promise<void> {
    await Promise.all(entries.map((entry) => this.set(entry.key, entry.value, entry.options)));
  }

  /** Counters since startup. */
  stats(): CacheStats {
    return structuredClone(this.counters);
  }

  /**
   * An entry the codec cannot read (corrupt, or written by an older codec) counts as a miss: it is
   * logged, counted as an error, and deleted so the loader's value replaces it. The delete is not
   * awaited: it goes out on the entry's connection before any write of the miss that follows.
   */
  private decodeOrDrop(valueKey: string, encoded: string | Buffer): unknown {
    try {
      return this.options.codec.decode(encoded, valueKey);
    } catch (error) {
      this.counters.errors++;
      this.logger.warn(`Dropped the cache entry "${valueKey}": ${(error as Error).message.split(' (')[0]}`);
      this.deleteRedisKeys([valueKey]).catch((deleteError: unknown) => this.noteRedisError(deleteError));
      return UNREADABLE;
    }
  }

  /** Runs `start` as the one load of this key in this process; callers that come meanwhile join it. */
  private async singleFlight(valueKey: string, start: () => Promise<Loaded>, withStatus: boolean): Promise<unknown> {
    const flight: Promise<Loaded> = start().finally(() => {
      if (this.inFlight.get(valueKey) === flight) this.inFlight.delete(valueKey);
    });
    this.inFlight.set(valueKey, flight);
    const loaded = await flight;
    return withStatus ? { value: loaded.value, status: loaded.status } : loaded.value;
  }

  private async join(flight: Promise<Loaded>, valueKey: string, withStatus: boolean): Promise<unknown> {
    this.counters.coalesced++;
    const loaded = await flight;
    const value = this.copyOf(loaded, valueKey);
    return withStatus ? { value, status: loaded.status } : value;
  }

  private async loadAndStore(keys: EntryKeys, loader: () => unknown, options: CacheEntryOptions, useL1: boolean): Promise<Loaded> {
    const bulkEpoch = this.bulkEpoch;
    const lock = options.lock ?? this.settings.stampede.lock;
    const token = lock ? randomBytes(12).toString('base64url') : '';
    let reply: [1, string | Buffer] | [0, string, number];
    try {
      reply = await missScript.run(this.client(), [keys.value, keys.generation, keys.lock], [token, this.settings.stampede.lockTtlMs], { buffers: this.options.codec.binary === true });
    } catch (error) {
      this.noteRedisError(error);
      return this.callLoader(loader);
    }
    // A value that is not a cache entry (written by someone else) is not served, nor overwritten.
    if (reply[0] === 1) return this.loadedFromRedis(keys, reply[1], useL1) ?? this.callLoader(loader);
    const [, rawGeneration, locked] = reply;
    const generation = String(rawGeneration);
    if (lock && locked === 0) {
      const appeared = await this.waitForValue(keys, useL1);
      if (appeared) return appeared;
    }
    let value: unknown;
    try {
      value = await this.callLoader(loader).then((loaded) => loaded.value);
    } catch (error) {
      if (locked === 1) await this.releaseLock(keys, token);
      throw error;
    }
    return this.store(keys, value, options, generation, locked === 1 ? token : '', useL1, bulkEpoch);
  }

  /** Stores a loaded value unless a write or delete happened since `generation` was read. */
  private async store(keys: EntryKeys, value: unknown, options: CacheEntryOptions, generation: string, token: string, useL1: boolean, bulkEpoch: number): Promise<Loaded> {
    // A tag, pattern or clear invalidation since the load began may have covered this entry: do not store.
    const invalidated = this.bulkEpoch !== bulkEpoch;
    const uncacheable = invalidated || ((value === null || value === undefined) && !(options.cacheNull ?? (options.bloom !== undefined || this.settings.cacheNull))) || options.unless?.(value) === true;
    if (uncacheable) {
      if (token) await this.releaseLock(keys, token);
      return { value, status: 'miss' };
    }
    let prepared: ReturnType<CacheService['prepare']>;
    try {
      prepared = this.prepare(keys.value, value, options);
    } catch (error) {
      if (token) await this.releaseLock(keys, token);
      throw error;
    }
    try {
      // Tagged before the store, so a tag invalidation cannot miss the entry (an unused tag member is harmless).
      await this.tag(keys.value, value, options, prepared.pxMs);
      const stored = await storeScript.run<number>(this.client(), [keys.value, keys.generation, keys.lock], [generation, prepared.payload, prepared.pxMs, token]);
      if (stored === 1 && useL1) this.remember(keys.value, value, prepared.encoded, prepared.freshUntil);
    } catch (error) {
      this.noteRedisError(error);
    }
    return { value, encoded: prepared.encoded, status: 'miss' };
  }

  /** Another instance holds the lock: poll for its result, for at most `stampede.wait`. */
  private async waitForValue(keys: EntryKeys, useL1: boolean): Promise<Loaded | undefined> {
    const deadline = Date.now() + this.settings.stampede.waitMs;
    let delay = 10;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 100);
      let raw: string | Buffer | null;
      let locked: number;
      try {
        [raw, locked] = await Promise.all([this.readRedis(keys.value), this.client().exists(keys.lock)]);
      } catch (error) {
        this.noteRedisError(error);
        return undefined;
      }
      if (raw !== null) return this.loadedFromRedis(keys, raw, useL1);
      // The holder gave up (its loader failed, or its result was not cached): load here now.
      if (locked === 0) return undefined;
    }
    return undefined;
  }

  private loadedFromRedis(keys: EntryKeys, raw: string | Buffer, useL1: boolean): Loaded | undefined {
    const entry = unpackEntry(raw);
    if (!entry) return undefined;
    const value = this.options.codec.decode(entry.encoded, keys.value);
    if (useL1) this.remember(keys.value, value, entry.encoded, entry.freshUntil);
    return { value, encoded: entry.encoded, status: 'hit' };
  }

  /** One refresh per key per process, and only where this instance gets the lock; failures back off. */
  private refreshInBackground(keys: EntryKeys, loader: () => unknown, options: CacheEntryOptions): void {
    const backoff = this.refreshBackoff.get(keys.value);
    if (this.refreshing.has(keys.value) || (backoff && backoff.until > Date.now())) return;
    if (backoff) this.refreshBackoff.delete(keys.value);
    this.refreshing.add(keys.value);
    void this.refresh(keys, loader, options, backoff).finally(() => this.refreshing.delete(keys.value));
  }

  private async refresh(keys: EntryKeys, loader: () => unknown, options: CacheEntryOptions, backoff: { delayMs: number } | undefined): Promise<void> {
    const token = randomBytes(12).toString('base64url');
    const bulkEpoch = this.bulkEpoch;
    try {
      const client = this.client();
      const locked = await client.set(keys.lock, token, 'PX', this.settings.stampede.lockTtlMs, 'NX');
      if (locked !== 'OK') return;
      const generation = (await client.get(keys.generation)) ?? '0';
      let value: unknown;
      try {
        value = (await this.callLoader(loader)).value;
      } catch (error) {
        await this.releaseLock(keys, token);
        const delayMs = Math.min(MAX_REFRESH_BACKOFF_MS, (backoff?.delayMs ?? 500) * 2);
        // Bounded: past the limit the oldest backoffs are forgotten (a refresh may then come sooner).
        if (this.refreshBackoff.size >= MAX_BACKOFF_ENTRIES) this.refreshBackoff.delete(this.refreshBackoff.keys().next().value as string);
        this.refreshBackoff.set(keys.value, { until: Date.now() + delayMs, delayMs });
        this.logger.warn(`Refreshing "${keys.value}" failed; serving the stale value, next try in ${delayMs}ms: ${(error as Error)?.message ?? error}`);
        return;
      }
      this.refreshBackoff.delete(keys.value);
      await this.store(keys, value, options, generation, token, this.usesL1(options.l1), bulkEpoch);
    } catch (error) {
      this.noteRedisError(error);
    }
  }

  private async releaseLock(keys: EntryKeys, token: string): Promise<void> {
    await storeScript.run(this.client(), [keys.value, keys.generation, keys.lock], ['', '', 0, token]).catch((error: unknown) => this.noteRedisError(error));
  }

  private async callLoader(loader: () => unknown): Promise<Loaded> {
    this.counters.loaderCalls++;
    return { value: await loader(), status: 'miss' };
  }

  /** Deletes entries (bumping their generations), then tells the other instances. */
  private async deleteRedisKeys(valueKeys: readonly string[], announce = true): Promise<number> {
    const results = await Promise.all(valueKeys.map((key) => writeScript.run<number>(this.client(), [key, `${key}:g`], [newGeneration(), GENERATION_TTL_MS, '', 0])));
    this.l1.delete(valueKeys);
    if (announce) await this.bus.publish({ keys: [...valueKeys] });
    return results.reduce((sum, deleted) => sum + deleted, 0);
  }

  /**
   * Adds the entry to its tags' sets: sorted sets scored by when the entry expires, so expired
   * members are pruned on each write, and each set lives as long as its longest-lived member.
   * One pipelined round trip per tag (the commands of a tag share its key, hence its slot).
   */
  private async tag(valueKey: string, value: unknown, options: CacheEntryOptions, pxMs: number): Promise<void> {
    const tags = typeof options.tags === 'function' ? options.tags(value) : options.tags;
    if (!tags?.length) return;
    const now = Date.now();
    await Promise.all(
      tags.map(async (tag) => {
        const tagKey = this.tagKey(tag);
        const replies = await this.client()
          .pipeline()
          .zadd(tagKey, now + pxMs, valueKey)
          .zremrangebyscore(tagKey, '-inf', now)
          .pexpire(tagKey, pxMs, 'GT')
          .pexpire(tagKey, pxMs, 'NX')
          .exec();
        const failed = replies?.find(([error]) => error)?.[0];
        if (failed) throw failed;
      }),
    );
  }

  /** Encodes a value into what Redis stores, with its (jittered) lifetimes. */
  private prepare(valueKey: string, value: unknown, options: CacheEntryOptions) {
    const isNull = value === null || value === undefined;
    const ttlOption = isNull ? (options.nullTtl ?? this.settings.nullTtlMs) : typeof options.ttl === 'function' ? options.ttl(value) : (options.ttl ?? this.settings.ttlMs);
    const ttlMs = this.jittered(toPositiveMilliseconds(ttlOption, 'ttl'));
    const staleMs = isNull ? 0 : toMilliseconds(options.staleWhileRevalidate ?? this.settings.staleWhileRevalidateMs, 'staleWhileRevalidate');
    const freshUntil = Date.now() + ttlMs;
    const encoded = this.options.codec.encode(value, valueKey);
    return { payload: packEntry(freshUntil, encoded), pxMs: ttlMs + staleMs, freshUntil, encoded };
  }

  private jittered(ttlMs: number): number {
    const spread = ttlMs * this.settings.jitter;
    return Math.max(1, Math.round(ttlMs - spread + Math.random() * 2 * spread));
  }

  private async readRedis(valueKey: string): Promise<string | Buffer | null> {
    const client = this.client();
    const raw = await (this.options.codec.binary ? client.getBuffer(valueKey) : client.get(valueKey));
    this.outage.succeeded();
    return raw;
  }

  private bulkInvalidated(): void {
    this.bulkEpoch++;
  }

  /**
   * Puts an entry in L1 once this instance hears invalidations (it joins the bus on first use, and
   * at startup when the module options have a `cache` section), so no L1 entry can miss one.
   */
  private remember(valueKey: string, value: unknown, encoded: string | Buffer, freshUntil: number, epochBefore = this.l1.epoch): void {
    if (this.settings.invalidation && !this.bus.listening) {
      this.bus.start();
      return;
    }
    if (this.l1.epoch === epochBefore) this.l1.set(valueKey, value, encoded, freshUntil);
  }

  private l1Get(valueKey: string): { value: unknown } | undefined {
    const hit = this.l1.get(valueKey);
    if (hit) this.counters.l1.hits++;
    else this.counters.l1.misses++;
    return hit;
  }

  /** Coalesced waiters get their own copy unless L1 is shared. */
  private copyOf(loaded: Loaded, valueKey: string): unknown {
    if (this.settings.l1.shared || loaded.encoded === undefined) return loaded.value;
    return this.options.codec.decode(loaded.encoded, valueKey);
  }

  private usesL1(requested: boolean | undefined): boolean {
    return this.settings.l1.enabled && (requested ?? this.settings.l1.byDefault);
  }

  /** Whether a miss may call the loader: false only when the item is certainly not in its Bloom filter. */
  private async bloomAllows(key: string, bloom: NonNullable<CacheEntryOptions['bloom']>): Promise<boolean> {
    const { filter, item } = typeof bloom === 'string' ? { filter: bloom, item: key } : bloom;
    const found = this.blooms.get(filter);
    try {
      return await found.mightContain(item);
    } catch (error) {
      // An item no filter can hold was never added; an unreachable filter lets the loader run.
      return !(error instanceof InvalidOptionError);
    }
  }

  private noteRedisError(error: unknown): void {
    this.counters.errors++;
    this.outage.failed(error);
  }

  /** The Redis key of an entry: `<prefix>{c:<key>}`, its own hash tag. */
  private valueKey(key: string): string {
    if (typeof key !== 'string' || key.length === 0) throw new InvalidOptionError('key', 'a non-empty string', key);
    return `${this.keys.prefix}{c:${encodeCacheKey(key)}}`;
  }

  /** The keys of an entry's miss path, all in the value key's slot. */
  private entryKeys(valueKey: string): EntryKeys {
    return { value: valueKey, generation: `${valueKey}:g`, lock: `${valueKey}:l` };
  }

  private tagKey(tag: string): string {
    if (typeof tag !== 'string' || tag.length === 0) throw new InvalidOptionError('tags', 'non-empty strings', tag);
    return this.keys.tagged(['ct', tag]);
  }

  /** The SCAN pattern of value keys whose cache key matches `pattern`. */
  private scanPattern(pattern: string): string {
    let body = '';
    for (let i = 0; i < pattern.length; i++) {
      const char = pattern[i];
      if (char === '\\' && i + 1 < pattern.length) body += encodeCacheKey(pattern[++i]);
      else body += char === '*' || char === '?' ? char : encodeCacheKey(char);
    }
    return `${this.keys.prefix}{c:${body}}`;
  }

  private client(): RedisClient {
    return this.redis;
  }
}

/**
 * Escapes `*`, `?` and `\` in text that goes into a `deleteByPattern` pattern, so that user input
 * matches only itself.
 * @example
 * await cache.deleteByPattern(`user:${escapeCachePattern(name)}:*`);
 */
export function escapeCachePattern(text: string): string {
  return text.replace(/[*?\\]/g, '\\$&');
}

