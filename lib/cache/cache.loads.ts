import type { Logger } from '@nestjs/common';
import type { RedisCodec } from '../core/codec.js';
import { RandomTokens } from '../core/random-tokens.js';
import type { MetricsHistogram } from '../core/metrics.js';
import type { RedisTracing } from '../core/tracing.js';
import type { CacheEntries, LoadStart, MissReply, PreparedEntry } from './cache.entries.js';
import { unpackEntry } from './cache.entry.js';
import type { CacheFailures } from './cache.failures.js';
import type { CacheInvalidation } from './cache.invalidation.js';
import type { EntryKeys } from './cache.keys.js';
import type { L1Tier } from './cache.l1-tier.js';
import type { ResolvedCacheOptions } from './cache.options-validator.js';
import type { CacheEntryOptions } from './cache.options.js';
import type { CacheStats } from './cache.stats.js';

/** The longest wait between a failed background refresh and the next attempt. */
const MAX_REFRESH_BACKOFF_MS = 30_000;
/** How many keys' refresh backoffs are remembered at most. */
const MAX_BACKOFF_ENTRIES = 10_000;

/** What a wait for another caller's load ends with when that caller let the lock go without a value. */
const HOLDER_GAVE_UP = Symbol('holder gave up');

/** A token that tells this caller's stampede lock from another's. */
const lockTokens = new RandomTokens(12, 'base64url');
const newLockToken = () => lockTokens.next();

/** Where a value came from: the cache (fresh), the cache past its ttl (stale), or the loader. */
export type CacheStatus = 'hit' | 'stale' | 'miss';

/** A miss round trip that found no value: the entry's keys, what cache-miss.lua answered, and the lock token it was given. */
export interface MissBegun {
  keys: EntryKeys;
  reply: Extract<MissReply, { 0: 0 }>;
  token: string;
}

/** What a load settles with: the value, its encoding when it was stored (to copy from), and where it came from. */
export interface Loaded {
  value: unknown;
  encoded?: string | Buffer;
  status: CacheStatus;
}

/**
 * What a miss does, across instances.
 *
 * - Stampede lock: the miss takes a short Redis lock in the same round trip as it reads the key's
 *   generation (cache-miss.lua). A miss that does not get it polls for the holder's value for
 *   `stampede.wait`; when the holder gives up, it tries for the lock again (one of the waiters
 *   gets it and loads, the others wait on), and once the wait is over it loads without the lock.
 * - No stale write-back: the result is stored only if the key's generation did not move (no
 *   write or delete of it) and no tag, pattern or clear invalidation happened since the load began.
 * - Stale-while-revalidate: one background refresh per key per process, only where this instance
 *   gets the lock; a failed one is retried after a backoff (doubling up to 30s), and the stale
 *   value keeps being served meanwhile.
 */
export class CacheLoads {
  private readonly refreshing = new Set<string>();
  private readonly refreshBackoff = new Map<string, { until: number; delayMs: number }>();

  constructor(
    private readonly entries: CacheEntries,
    private readonly l1: L1Tier,
    private readonly invalidation: CacheInvalidation,
    private readonly codec: RedisCodec,
    private readonly settings: ResolvedCacheOptions,
    private readonly counters: CacheStats,
    private readonly failures: CacheFailures,
    private readonly logger: Logger,
    private readonly loaderDurations: MetricsHistogram,
    private readonly tracing: RedisTracing,
  ) {}

  /**
   * Calls the loader (counted; timed while an exporter listens, in a `cache.load` span while a
   * tracer is attached), without the cache: what a miss does while Redis is away.
   */
  async callLoader(loader: () => unknown): Promise<Loaded> {
    this.counters.loaderCalls++;
    if (!this.loaderDurations.active && !this.tracing.active) return { value: await loader(), status: 'miss' };
    return { value: await this.tracing.span('cache.load', () => this.timed(loader)), status: 'miss' };
  }

  private async timed(loader: () => unknown): Promise<unknown> {
    if (!this.loaderDurations.active) return loader();
    const started = performance.now();
    let outcome = 'error';
    try {
      const value = await loader();
      outcome = 'ok';
      return value;
    } finally {
      this.loaderDurations.observe({ outcome }, (performance.now() - started) / 1000);
    }
  }

  /** The token of this caller's stampede lock, or '' where `options` (or the defaults) take none. */
  lockToken(options: CacheEntryOptions): string {
    return (options.lock ?? this.settings.stampede.lock) ? newLockToken() : '';
  }

  /** Releases the lock a miss round trip took, for a caller that joins a load of this process instead. */
  async giveUp(begun: MissBegun): Promise<void> {
    if (begun.reply[2] === 1) await this.entries.releaseLock(begun.keys, begun.token);
  }

  /**
   * Loads a missing entry: the stampede lock (or the holder's value), the loader, then the store.
   * `begun` is the miss round trip when the caller made it already (a miss that found no value).
   */
  async loadAndStore(
    keys: EntryKeys,
    loader: () => unknown,
    options: CacheEntryOptions,
    useL1: boolean,
    begun?: MissBegun,
  ): Promise<Loaded> {
    const lock = options.lock ?? this.settings.stampede.lock;
    const token = begun?.token ?? this.lockToken(options);
    const deadline = Date.now() + this.settings.stampede.waitMs;
    let reply: MissReply | undefined = begun?.reply;
    let found: Extract<MissReply, { 0: 0 }>;
    for (;;) {
      const epoch = this.l1.epoch;
      try {
        reply ??= await this.entries.miss(keys, token);
      } catch (error) {
        this.failures.missOnOutage(error);
        return this.callLoader(loader);
      }
      // A value that is not a cache entry (written by someone else) is not served, nor overwritten.
      if (reply[0] === 1) return this.loadedFromRedis(keys, reply[1], useL1, epoch) ?? this.callLoader(loader);
      found = reply;
      if (!lock || found[2] === 1) break;
      const waited = await this.waitForValue(keys, useL1, deadline);
      if (waited !== HOLDER_GAVE_UP) {
        if (waited) return waited;
        break; // the wait is over, or Redis is away: load without the lock
      }
      // The holder gave up: try for the lock again, so that the waiters of every instance do not all load.
      reply = undefined;
    }
    const [, generation, locked, slotEpoch] = found;
    let value: unknown;
    try {
      value = await this.callLoader(loader).then((loaded) => loaded.value);
    } catch (error) {
      if (locked === 1) await this.entries.releaseLock(keys, token);
      throw error;
    }
    return this.store(keys, value, options, { generation: String(generation), epoch: String(slotEpoch) }, locked === 1 ? token : '', useL1);
  }

  /**
   * Stores a loaded value unless, since the load began, the entry was written or deleted (its
   * generation moved) or a tag, pattern or clear invalidation happened (its slot's epoch moved).
   */
  private async store(
    keys: EntryKeys,
    value: unknown,
    options: CacheEntryOptions,
    began: LoadStart,
    token: string,
    useL1: boolean,
  ): Promise<Loaded> {
    const uncacheable =
      ((value === null || value === undefined) && !(options.cacheNull ?? (options.bloom !== undefined || this.settings.cacheNull))) ||
      options.unless?.(value) === true;
    if (uncacheable) {
      if (token) await this.entries.releaseLock(keys, token);
      return { value, status: 'miss' };
    }
    let prepared: PreparedEntry;
    try {
      prepared = this.entries.prepare(keys.value, value, options);
    } catch (error) {
      if (token) await this.entries.releaseLock(keys, token);
      throw error;
    }
    try {
      // Tagged before the store, so a tag invalidation cannot miss the entry (an unused tag member is harmless).
      await this.invalidation.tag(keys.value, value, options, prepared.pxMs);
      const epoch = this.l1.epoch;
      const stored = await this.entries.store(keys, began, prepared, token);
      if (stored === 1 && useL1) this.l1.remember(keys.value, value, prepared.encoded, prepared.freshUntil, epoch);
    } catch (error) {
      // The caller has its value: a failed store is noted, not thrown. The lock goes too, unless
      // the store script released it already (a release checks the token).
      this.failures.noteFailure(error, `store "${keys.value}"`);
      if (token) await this.entries.releaseLock(keys, token);
    }
    return { value, encoded: prepared.encoded, status: 'miss' };
  }

  /**
   * Another caller holds the lock: poll for its result until `deadline`. {@link HOLDER_GAVE_UP}
   * when the lock went without a value (its loader failed, or its result was not cached); undefined
   * once the wait is over, or when Redis cannot be reached.
   */
  private async waitForValue(keys: EntryKeys, useL1: boolean, deadline: number): Promise<Loaded | typeof HOLDER_GAVE_UP | undefined> {
    let delay = 10;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 100);
      let raw: string | Buffer | null;
      let locked: number;
      const epoch = this.l1.epoch;
      try {
        [raw, locked] = await this.entries.poll(keys);
      } catch (error) {
        this.failures.missOnOutage(error);
        return undefined;
      }
      if (raw !== null) return this.loadedFromRedis(keys, raw, useL1, epoch);
      if (locked === 0) return HOLDER_GAVE_UP;
    }
    return undefined;
  }

  /** A value Redis answered with, kept in L1 unless its key was invalidated since `epochBefore`. */
  private loadedFromRedis(keys: EntryKeys, raw: string | Buffer, useL1: boolean, epochBefore: number): Loaded | undefined {
    const entry = unpackEntry(raw);
    if (!entry) return undefined;
    const value = this.codec.decode(entry.encoded, keys.value);
    if (useL1) this.l1.remember(keys.value, value, entry.encoded, entry.freshUntil, epochBefore);
    return { value, encoded: entry.encoded, status: 'hit' };
  }

  /** One refresh per key per process, and only where this instance gets the lock; failures back off. */
  refreshInBackground(keys: EntryKeys, loader: () => unknown, options: CacheEntryOptions): void {
    const backoff = this.refreshBackoff.get(keys.value);
    if (this.refreshing.has(keys.value) || (backoff && backoff.until > Date.now())) return;
    if (backoff) this.refreshBackoff.delete(keys.value);
    this.refreshing.add(keys.value);
    void this.refresh(keys, loader, options, backoff).finally(() => this.refreshing.delete(keys.value));
  }

  private async refresh(
    keys: EntryKeys,
    loader: () => unknown,
    options: CacheEntryOptions,
    backoff: { delayMs: number } | undefined,
  ): Promise<void> {
    const token = newLockToken();
    try {
      const locked = await this.entries.lockForRefresh(keys, token);
      if (locked === undefined) return;
      let value: unknown;
      try {
        value = (await this.callLoader(loader)).value;
      } catch (error) {
        await this.entries.releaseLock(keys, token);
        const delayMs = Math.min(MAX_REFRESH_BACKOFF_MS, (backoff?.delayMs ?? 500) * 2);
        // Bounded: past the limit the oldest backoffs are forgotten (a refresh may then come sooner).
        if (this.refreshBackoff.size >= MAX_BACKOFF_ENTRIES) this.refreshBackoff.delete(this.refreshBackoff.keys().next().value as string);
        this.refreshBackoff.set(keys.value, { until: Date.now() + delayMs, delayMs });
        this.logger.warn(
          `Refreshing "${keys.value}" failed; serving the stale value, next try in ${delayMs}ms: ${(error as Error)?.message ?? error}`,
        );
        return;
      }
      this.refreshBackoff.delete(keys.value);
      await this.store(keys, value, options, locked, token, this.l1.uses(options.l1));
    } catch (error) {
      this.failures.noteFailure(error, `refresh "${keys.value}"`);
    }
  }
}
