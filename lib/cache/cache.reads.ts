import type { BloomFilterService } from '../bloom/bloom.service.js';
import { JsonCodec, type RedisCodec } from '../core/codec.js';
import { InvalidOptionError } from '../core/errors.js';
import { InFlight } from '../core/in-flight.js';
import { isStoreFailure } from '../core/store-failure.js';
import { UNREADABLE, type CacheEntries } from './cache.entries.js';
import { unpackEntry } from './cache.entry.js';
import type { CacheFailures } from './cache.failures.js';
import type { CacheKeys } from './cache.keys.js';
import type { L1Tier } from './cache.l1-tier.js';
import type { CacheLoads, Loaded, MissBegun } from './cache.loads.js';
import type { ResolvedCacheOptions } from './cache.options-validator.js';
import type { CacheEntryOptions } from './cache.options.js';
import type { CacheStats } from './cache.stats.js';

/** How many recent reads of Redis the miss rate averages over (an exponential moving average). */
const MISS_RATE_WINDOW = 32;
/** The miss rate past which {@link CacheReads.find} reads with the miss script (see `readsByScript`). */
const SCRIPT_FIRST_MISS_RATE = 0.25;

/** What the first read found: the raw value, or none, and the miss round trip when it was that. */
interface FirstRead {
  raw: string | Buffer | null;
  begun?: MissBegun;
}

/** A cached value, and when it stops being fresh (Infinity for an entry that never does). */
export interface CachedEntry<T = unknown> {
  value: T;
  freshUntil: number;
}

/**
 * The read path of `get`, `getEntry`, `getOrSet` and `lookup`: an L1 hit, or one round trip on a
 * Redis hit (a stale value is served while {@link CacheLoads} refreshes it): a GET, or for
 * `getOrSet` while misses are common the miss script, which takes the lock on a miss (see
 * `readsByScript`). Only a miss, or a read during an outage, goes through the per-key single flight
 * of this process: callers that come meanwhile wait for its load, each with its own copy of the
 * result unless L1 is shared. With a Bloom filter, a miss whose item is certainly not in it
 * answers null without the loader.
 */
export class CacheReads {
  private readonly inFlight = new InFlight<Loaded>();
  /** The share of recent reads of Redis that missed (see `readsByScript`). */
  private missRate = 0;

  constructor(
    private readonly keys: CacheKeys,
    private readonly entries: CacheEntries,
    private readonly l1: L1Tier,
    private readonly loads: CacheLoads,
    private readonly blooms: BloomFilterService,
    private readonly codec: RedisCodec,
    private readonly settings: ResolvedCacheOptions,
    private readonly counters: CacheStats,
    private readonly failures: CacheFailures,
  ) {}

  /**
   * The entry of `key` from L1 or one GET, stale or not: undefined on a miss (an unreadable entry is
   * one) or while Redis cannot be reached. Only L1 hits and misses are counted.
   */
  entry(key: string, l1: boolean | undefined): Promise<CachedEntry | undefined> {
    return this.read(key, l1, false);
  }

  /**
   * As {@link entry}, with the JSON text of the value as stored, when the codec is a
   * {@link JsonCodec} that wrote it untagged (`json`): text that can be passed on as it is. From L1,
   * the value is copied only if read.
   */
  stored(key: string, l1: boolean | undefined): Promise<(CachedEntry & { json?: string }) | undefined> {
    return this.read(key, l1, true);
  }

  private async read(key: string, l1: boolean | undefined, withJson: boolean): Promise<(CachedEntry & { json?: string }) | undefined> {
    const valueKey = this.keys.value(key);
    const useL1 = this.l1.uses(l1);
    const local = useL1 ? (withJson ? this.l1.getWithJson(valueKey) : this.l1.get(valueKey)) : undefined;
    if (local) return local;
    const epoch = this.l1.epoch;
    let raw: string | Buffer | null;
    try {
      raw = await this.entries.readAndNote(valueKey);
    } catch (error) {
      // Fail-open, like getOrSet: with Redis away, a read is a miss.
      this.failures.missOnOutage(error);
      return undefined;
    }
    const entry = raw === null ? undefined : unpackEntry(raw);
    const value = entry ? this.entries.decodeOrDrop(valueKey, entry.encoded) : UNREADABLE;
    if (!entry || value === UNREADABLE) return undefined;
    if (useL1) this.l1.remember(valueKey, value, entry.encoded, entry.freshUntil, epoch);
    if (!withJson || !(this.codec instanceof JsonCodec)) return { value, freshUntil: entry.freshUntil };
    return { value, freshUntil: entry.freshUntil, json: this.codec.plainJsonText(entry.encoded) };
  }

  /** The value of `key`, or `{ value, status }` when `withStatus`. */
  async find(key: string, loader: () => unknown, options: CacheEntryOptions, withStatus: boolean): Promise<unknown> {
    const valueKey = this.keys.value(key);
    const useL1 = this.l1.uses(options.l1);
    const local = useL1 ? this.l1.get(valueKey) : undefined;
    if (local) return withStatus ? { value: local.value, status: 'hit' } : local.value;

    const pending = this.inFlight.get(valueKey);
    if (pending) return this.join(pending, valueKey, withStatus);
    const epoch = this.l1.epoch;
    let read: FirstRead;
    try {
      // A GET awaited as ioredis's own promise: no promise more on the path of a hit.
      read = this.readsByScript(options) ? await this.readByScript(valueKey, options) : { raw: await this.entries.read(valueKey) };
      this.failures.answered();
    } catch (error) {
      this.failures.missOnOutage(error);
      // Redis is away: still one loader call per key in this process.
      return this.singleFlight(valueKey, () => this.loads.callLoader(loader), withStatus);
    }
    const entry = read.raw === null ? undefined : unpackEntry(read.raw);
    const value = entry ? this.entries.decodeOrDrop(valueKey, entry.encoded) : UNREADABLE;
    const missed = !entry || value === UNREADABLE;
    this.missRate += ((missed ? 1 : 0) - this.missRate) / MISS_RATE_WINDOW;
    if (!missed) {
      if (entry.freshUntil > Date.now()) {
        this.counters.redis.hits++;
        if (useL1) this.l1.remember(valueKey, value, entry.encoded, entry.freshUntil, epoch);
        return withStatus ? { value, status: 'hit' } : value;
      }
      this.counters.staleServed++;
      this.loads.refreshInBackground(this.keys.entry(valueKey), loader, options);
      return withStatus ? { value, status: 'stale' } : value;
    }
    this.counters.redis.misses++;
    const loading = this.inFlight.get(valueKey);
    if (loading) {
      if (read.begun) await this.loads.giveUp(read.begun);
      return this.join(loading, valueKey, withStatus);
    }
    if (options.bloom !== undefined && !(await this.bloomAllows(key, options.bloom))) {
      this.counters.bloomRejected++;
      return withStatus ? { value: null, status: 'miss' } : null;
    }
    const keys = read.begun?.keys ?? this.keys.entry(valueKey);
    return this.singleFlight(valueKey, () => this.loads.loadAndStore(keys, loader, options, useL1, read.begun), withStatus);
  }

  /**
   * Whether the first read of a key that L1 does not answer is the miss round trip itself
   * (cache-miss.lua: the value, or the lock and what the store must find unchanged), as while
   * many reads miss, rather than a GET, as while most hit. The script saves a miss one round trip
   * of three and costs a hit more: at one caller 5-7 µs more time (a round trip is about 45 µs
   * here), so it pays from about 10% of misses; at 64 callers, where the client's CPU bounds
   * throughput, 8.5-8.9 µs of CPU per hit against 5.0-5.9, so from about 40%. Past 25%, the worst
   * loss either way is about a tenth. Not with a Bloom filter, whose check comes before the lock.
   */
  private readsByScript(options: CacheEntryOptions): boolean {
    return this.missRate > SCRIPT_FIRST_MISS_RATE && options.bloom === undefined;
  }

  /** The first read by the miss script: the value, or none and the lock this caller may have taken. */
  private async readByScript(valueKey: string, options: CacheEntryOptions): Promise<FirstRead> {
    const keys = this.keys.entry(valueKey);
    const token = this.loads.lockToken(options);
    const reply = await this.entries.miss(keys, token);
    return reply[0] === 1 ? { raw: reply[1] } : { raw: null, begun: { keys, reply, token } };
  }

  /**
   * Runs `start` as the one load of this key in this process; callers that come meanwhile join it,
   * as does a caller whose own checks awaited (Redis, a Bloom filter) while another began the load.
   */
  private async singleFlight(valueKey: string, start: () => Promise<Loaded>, withStatus: boolean): Promise<unknown> {
    const running = this.inFlight.get(valueKey);
    if (running) return this.join(running, valueKey, withStatus);
    const loaded = await this.inFlight.run(valueKey, start);
    return withStatus ? { value: loaded.value, status: loaded.status } : loaded.value;
  }

  private async join(flight: Promise<Loaded>, valueKey: string, withStatus: boolean): Promise<unknown> {
    this.counters.coalesced++;
    const loaded = await flight;
    const value = this.copyOf(loaded, valueKey);
    return withStatus ? { value, status: loaded.status } : value;
  }

  /** Coalesced waiters get their own copy unless L1 is shared. */
  private copyOf(loaded: Loaded, valueKey: string): unknown {
    if (this.settings.l1.shared || loaded.encoded === undefined) return loaded.value;
    return this.codec.decode(loaded.encoded, valueKey);
  }

  /** Whether a miss may call the loader: false only when the item is certainly not in its Bloom filter. */
  private async bloomAllows(key: string, bloom: NonNullable<CacheEntryOptions['bloom']>): Promise<boolean> {
    const { filter, item } = typeof bloom === 'string' ? { filter: bloom, item: key } : bloom;
    const found = this.blooms.get(filter);
    try {
      return await found.mightContain(item);
    } catch (error) {
      // An item no filter can hold was never added; an unreachable filter (logged by the filters) lets the loader run.
      if (error instanceof InvalidOptionError) return false;
      if (isStoreFailure(error)) return true;
      throw error;
    }
  }
}
