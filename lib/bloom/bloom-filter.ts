import { randomBytes } from 'node:crypto';
import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import type { CountedMetric } from '../core/metrics.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { assertWellFormed } from '../core/validation.js';
import { bitPositions } from './bloom.hash.js';
import type { BloomFilterInfo, BloomItems } from './bloom.options.js';
import type { ResolvedBloomFilterOptions } from './bloom.options-validator.js';

const addScript = RedisScript.fromFile(new URL('./bloom-add.lua', import.meta.url));
const checkScript = RedisScript.fromFile(new URL('./bloom-check.lua', import.meta.url));
const rebuildScript = RedisScript.fromFile(new URL('./bloom-rebuild.lua', import.meta.url));

/** The longest item, in characters. */
export const MAX_ITEM_LENGTH = 4096;
/** How long a rebuild keeps its claim without filling a batch: a crashed one frees the filter after this. */
const REBUILD_LEASE_MS = 120_000;
/** Script replies: the stored parameters are not ours (open again), and our rebuild was overtaken. */
const STALE_PARAMETERS = -1;
const OVERTAKEN = -2;

/** Where a filter lives and how it is stored, as settled when it was opened. */
export interface BloomFilterStorage {
  /** The metadata hash, then generations 'a' and 'b' (one hash tag). */
  keys: [string, string, string];
  backend: 'redisbloom' | 'bitmap';
  /** The stored parameters (the ones the bitmap was built with). */
  bits: number;
  hashes: number;
  capacity: number;
  errorRate: number;
}

/**
 * A Bloom filter in Redis: `mightContain` is false only for items never added (no false
 * negatives), and true for absent ones at about `errorRate` at capacity. Each call, single or
 * batched, is one script; all keys of a filter share one hash tag.
 *
 * @example
 * await products.add(product.id);                  // after the database commit
 * if (!(await products.mightContain(id))) throw new NotFoundException();
 */
export class BloomFilter {
  private built?: Promise<void>;
  private opened?: Promise<BloomFilterStorage>;
  private addCalls = 0;
  private warnedFull = false;

  constructor(
    readonly name: string,
    private readonly redis: RedisClient,
    /** Settles how the filter is stored (with Redis): on first use, and again when it changed. */
    private readonly open: () => Promise<BloomFilterStorage>,
    private readonly options: ResolvedBloomFilterOptions,
    /** Where over-capacity warnings go, and the feature's outage log: a call Redis cannot answer rejects with RedisUnavailableError. */
    private readonly report: { warn: (message: string) => void; outage: OutageLog; checks: CountedMetric },
  ) {}

  /** Adds an item; true when it was new to the filter. Add after the database commit, never before. */
  async add(item: string): Promise<boolean> {
    return (await this.addMany([item]))[0];
  }

  /** Adds items, `batchSize` per script call; per item, whether it was new. */
  async addMany(items: readonly string[]): Promise<boolean[]> {
    const added = await this.inBatches(items, async (batch) => {
      // Only a rebuild's target can be overtaken.
      const reply = (await this.run(addScript, 'live', batch)) as number[] | null;
      return reply === null ? batch.map(() => true) : reply.map((one) => one === 1);
    });
    // Now and then (in the background), see whether the filter has passed its capacity.
    if (!this.warnedFull && ++this.addCalls % 1000 === 1) void this.warnIfFull();
    return added;
  }

  /** False when the item was certainly never added; true when it might have been (or the filter is not built). */
  async mightContain(item: string): Promise<boolean> {
    return (await this.lookup([item])).found[0];
  }

  /** `mightContain` for several items, `batchSize` per script call. */
  async mightContainMany(items: readonly string[]): Promise<boolean[]> {
    return (await this.lookup(items)).found;
  }

  /** `mightContainMany`, also telling whether the filter is built (an unbuilt one answers true for all). */
  async lookup(items: readonly string[]): Promise<{ found: boolean[]; built: boolean }> {
    let built = true;
    const found = await this.inBatches(items, async (batch) => {
      const reply = (await this.run(checkScript, undefined, batch)) as number[] | null;
      if (reply === null) built = false;
      return reply === null ? batch.map(() => true) : reply.map((one) => one === 1);
    });
    const maybe = found.filter(Boolean).length;
    if (maybe > 0) this.report.checks.add({ filter: this.name, result: 'maybe' }, maybe);
    if (maybe < found.length) this.report.checks.add({ filter: this.name, result: 'absent' }, found.length - maybe);
    return { found, built };
  }

  /** The filter's backend, parameters, fill and size. */
  async info(): Promise<BloomFilterInfo> {
    return this.report.outage.guard(this.readInfo());
  }

  private async readInfo(): Promise<BloomFilterInfo> {
    const storage = await this.storage();
    const { backend, capacity, errorRate } = storage;
    const [live, bitmapItems] = (await this.redis
      .hmget(storage.keys[0], 'active', 'items:a', 'items:b')
      .then(([active, a, b]) => [active, active === 'a' ? a : b])) as [string | null, string | null];
    const key = live === 'a' ? storage.keys[1] : storage.keys[2];
    if (!live || !(await this.redis.exists(key)))
      return { backend, capacity, errorRate, items: 0, sizeBytes: 0, built: false, overCapacity: false };
    let items: number;
    let sizeBytes: number;
    if (backend === 'bitmap') {
      items = Number(bitmapItems ?? 0);
      sizeBytes = await this.redis.strlen(key);
    } else {
      const fields = (await this.redis.call('BF.INFO', key)) as (string | number)[];
      const field = (label: string) => Number(fields[fields.indexOf(label) + 1]);
      items = field('Number of items inserted');
      sizeBytes = field('Size');
    }
    return { backend, capacity, errorRate, items, sizeBytes, built: true, overCapacity: items > capacity };
  }

  /**
   * Refills a fresh filter from `source` and swaps it in at once; meanwhile `add` (on any
   * instance) writes to both, so nothing added during the rebuild is lost. Resolves false when
   * another rebuild began since (that one is swapped in instead, and this one stops). A rebuild
   * whose source fails gives its generation up and rejects; one that crashes frees the filter
   * after two minutes without a batch.
   * @example
   * await filter.rebuild(this.products.streamIds()); // an async iterable of ids (or of arrays of ids)
   */
  async rebuild(source: BloomItems): Promise<boolean> {
    const token = randomBytes(9).toString('base64url');
    await this.rebuildStep('begin', token);
    try {
      let batch: string[] = [];
      for await (const chunk of await source) {
        for (const item of typeof chunk === 'string' ? [chunk] : chunk) {
          checkItem(item);
          batch.push(item);
          if (batch.length < this.options.batchSize) continue;
          if ((await this.run(addScript, token, batch)) === OVERTAKEN) return false;
          batch = [];
        }
      }
      if (batch.length > 0 && (await this.run(addScript, token, batch)) === OVERTAKEN) return false;
    } catch (error) {
      await this.rebuildStep('abort', token).catch(() => undefined);
      throw error;
    }
    return (await this.rebuildStep('swap', token)) === 1;
  }

  /** Resolves once this process's startup prefill of the filter (if any) has run. */
  whenBuilt(): Promise<void> {
    return this.built ?? Promise.resolve();
  }

  /** @internal The startup prefill, run by BloomFilterService. */
  trackBuild(build: Promise<void>): void {
    this.built = build;
  }

  /** @internal Whether the filter is built, and whether a rebuild (on any instance) holds a lease now. */
  async status(): Promise<{ built: boolean; rebuilding: boolean }> {
    const [live, rebuilding] = await this.report.outage.guard(
      rebuildScript.run<[string, number]>(this.redis, (await this.storage()).keys, ['status']),
    );
    return { built: live !== '', rebuilding: rebuilding === 1 };
  }

  private async warnIfFull(): Promise<void> {
    const info = await this.info().catch(() => undefined);
    if (!info?.overCapacity || this.warnedFull) return;
    this.warnedFull = true;
    this.report.warn(
      `Bloom filter "${this.name}" holds ${info.items} items, more than its capacity of ${info.capacity}: its false-positive rate is above ${info.errorRate}. Use a larger filter under a new name.`,
    );
  }

  /**
   * Runs the add or check script on some items (add: `target` 'live' or a build token). Opens the
   * filter again, once, when the stored parameters changed under this process (the metadata was
   * lost and written again by another instance). Null: not built; OVERTAKEN: the rebuild was.
   */
  private async run(
    script: RedisScript,
    target: string | undefined,
    items: readonly string[],
    retried = false,
  ): Promise<number[] | null | typeof OVERTAKEN> {
    const storage = await this.storage();
    const head: (string | number)[] = [storage.backend, storage.bits, storage.hashes];
    if (target !== undefined) head.push(target, REBUILD_LEASE_MS);
    const reply = await this.report.outage.guard(
      script.run<number[] | null | number>(this.redis, storage.keys, [...head, ...this.encode(storage, items)]),
    );
    if (reply === STALE_PARAMETERS) {
      if (retried) throw new RedisPatternsError(`Bloom filter "${this.name}" keeps changing its stored parameters`);
      this.opened = undefined;
      return this.run(script, target, items, true);
    }
    if (reply === OVERTAKEN) return OVERTAKEN;
    return reply as number[] | null;
  }

  private async rebuildStep(op: 'begin' | 'swap' | 'abort', token: string): Promise<number> {
    const storage = await this.storage();
    const { backend, bits, hashes, capacity, errorRate } = storage;
    const args = op === 'begin' ? [op, token, REBUILD_LEASE_MS, backend, bits, hashes, capacity, errorRate] : [op, token];
    const reply = await this.report.outage.guard(rebuildScript.run<number>(this.redis, storage.keys, args));
    if (reply === STALE_PARAMETERS) {
      this.opened = undefined;
      throw new RedisPatternsError(
        `Bloom filter "${this.name}" is stored with other parameters than this process opened it with; rebuild it again`,
      );
    }
    return reply;
  }

  private storage(): Promise<BloomFilterStorage> {
    this.opened ??= this.report.outage.guard(this.open()).catch((error: unknown) => {
      this.opened = undefined;
      throw error;
    });
    return this.opened;
  }

  /** The script arguments of some items: their bit positions (bitmap), or the items (RedisBloom). */
  private encode(storage: BloomFilterStorage, items: readonly string[]): (string | number)[] {
    if (storage.backend === 'redisbloom') return items as string[];
    const { bits, hashes } = storage;
    const args: number[] = [];
    for (const item of items) for (const position of bitPositions(item, bits, hashes)) args.push(position);
    return args;
  }

  private async inBatches<T>(items: readonly string[], run: (batch: readonly string[]) => Promise<T[]>): Promise<T[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'an array of strings', items);
    for (const item of items) checkItem(item);
    if (items.length <= this.options.batchSize) return items.length === 0 ? [] : run(items);
    const results: T[] = [];
    for (let at = 0; at < items.length; at += this.options.batchSize)
      results.push(...(await run(items.slice(at, at + this.options.batchSize))));
    return results;
  }
}

function checkItem(item: unknown): asserts item is string {
  if (typeof item !== 'string' || item.length === 0 || item.length > MAX_ITEM_LENGTH) {
    throw new InvalidOptionError(
      'item',
      `a non-empty string of at most ${MAX_ITEM_LENGTH} characters`,
      typeof item === 'string' && item.length > 64 ? `${item.slice(0, 64)}… (${item.length} characters)` : item,
    );
  }
  // Hashed as UTF-8, where a lone surrogate becomes U+FFFD: two items would be one.
  assertWellFormed('item', item);
}
