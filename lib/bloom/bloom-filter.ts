import { randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../core/errors.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { bitPositions } from './bloom.hash.js';
import type { BloomFilterInfo } from './bloom.options.js';
import type { ResolvedBloomFilterOptions } from './bloom.options-validator.js';

const addScript = RedisScript.fromFile(new URL('./bloom-add.lua', import.meta.url));
const checkScript = RedisScript.fromFile(new URL('./bloom-check.lua', import.meta.url));
const rebuildScript = RedisScript.fromFile(new URL('./bloom-rebuild.lua', import.meta.url));

/** The longest item, in characters. */
const MAX_ITEM_LENGTH = 4096;

/** Where a filter lives and how it is stored, as settled when it was opened. */
export interface BloomFilterStorage {
  /** The metadata hash, and the base of its generations' keys (one hash tag). */
  metaKey: string;
  baseKey: string;
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
    /** Settles how the filter is stored (with Redis): on first use, again after a failure. */
    private readonly open: () => Promise<BloomFilterStorage>,
    private readonly options: ResolvedBloomFilterOptions,
    private readonly warn: (message: string) => void,
  ) {}

  /** Adds an item; true when it was new to the filter. Add after the database commit, never before. */
  async add(item: string): Promise<boolean> {
    return (await this.addMany([item]))[0];
  }

  /** Adds items, `batchSize` per script call; per item, whether it was new. */
  async addMany(items: readonly string[]): Promise<boolean[]> {
    const added = await this.inBatches(items, (batch) => this.addTo('live', batch));
    // Now and then (in the background), see whether the filter has passed its capacity.
    if (!this.warnedFull && ++this.addCalls % 1000 === 1) void this.warnIfFull();
    return added;
  }

  private async warnIfFull(): Promise<void> {
    const info = await this.info().catch(() => undefined);
    if (!info?.overCapacity || this.warnedFull) return;
    this.warnedFull = true;
    this.warn(`Bloom filter "${this.name}" holds ${info.items} items, more than its capacity of ${info.capacity}: its false-positive rate is above ${info.errorRate}. Use a larger filter under a new name.`);
  }

  /** False when the item was certainly never added; true when it might have been (or the filter is not built yet). */
  async mightContain(item: string): Promise<boolean> {
    return (await this.mightContainMany([item]))[0];
  }

  /** `mightContain` for several items, `batchSize` per script call. */
  async mightContainMany(items: readonly string[]): Promise<boolean[]> {
    const storage = await this.storage();
    return this.inBatches(items, async (batch) => {
      const found = await checkScript.run<number[] | null>(this.redis, keysOf(storage), [storage.backend, ...this.encode(storage, batch)]);
      return found === null ? batch.map(() => true) : found.map((one) => one === 1);
    });
  }

  /** The filter's backend, parameters, fill and size. */
  async info(): Promise<BloomFilterInfo> {
    const storage = await this.storage();
    const live = await this.redis.hget(storage.metaKey, 'active');
    const { backend, capacity, errorRate } = storage;
    if (!live) return { backend, capacity, errorRate, items: 0, sizeBytes: 0, built: false, overCapacity: false };
    let items: number;
    let sizeBytes: number;
    if (backend === 'bitmap') {
      items = Number((await this.redis.hget(storage.metaKey, `items:${live}`)) ?? 0);
      sizeBytes = Math.ceil(storage.bits / 8);
    } else {
      const fields = (await this.redis.call('BF.INFO', `${storage.baseKey}:${live}`)) as (string | number)[];
      const field = (label: string) => Number(fields[fields.indexOf(label) + 1]);
      items = field('Number of items inserted');
      sizeBytes = field('Size');
    }
    return { backend, capacity, errorRate, items, sizeBytes, built: true, overCapacity: items > capacity };
  }

  /**
   * Refills a fresh filter from `source` and swaps it in at once; meanwhile `add` writes to both,
   * so nothing added during the rebuild is lost. Resolves false when another rebuild began since
   * (that one is swapped in instead). Use it to drop removed items, or after an outage.
   * @example
   * await filter.rebuild(this.products.streamIds()); // an async iterable of ids (or of arrays of ids)
   */
  async rebuild(source: AsyncIterable<string | readonly string[]> | Iterable<string | readonly string[]>): Promise<boolean> {
    const storage = await this.storage();
    const generation = randomBytes(6).toString('base64url');
    const { backend, bits, hashes, capacity, errorRate } = storage;
    await rebuildScript.run(this.redis, keysOf(storage), ['begin', generation, backend, bits, hashes, capacity, errorRate]);
    let batch: string[] = [];
    for await (const chunk of source) {
      for (const item of typeof chunk === 'string' ? [chunk] : chunk) {
        batch.push(item);
        if (batch.length >= this.options.batchSize) {
          await this.addTo(generation, batch);
          batch = [];
        }
      }
    }
    if (batch.length > 0) await this.addTo(generation, batch);
    return (await rebuildScript.run<number>(this.redis, keysOf(storage), ['swap', generation])) === 1;
  }

  /** Resolves once the filter's startup prefill (if any) is done. */
  whenBuilt(): Promise<void> {
    return this.built ?? Promise.resolve();
  }

  /** @internal The startup prefill, run by BloomFilterService. */
  trackBuild(build: Promise<void>): void {
    this.built = build;
  }

  /** @internal Whether the filter has been built (a prefill runs only for one that has not). */
  async isBuilt(): Promise<boolean> {
    return (await this.redis.hget((await this.storage()).metaKey, 'active')) ? true : false;
  }

  private storage(): Promise<BloomFilterStorage> {
    this.opened ??= this.open().catch((error: unknown) => {
      this.opened = undefined;
      throw error;
    });
    return this.opened;
  }

  private async addTo(target: string, items: readonly string[]): Promise<boolean[]> {
    const storage = await this.storage();
    const added = await addScript.run<number[]>(this.redis, keysOf(storage), [storage.backend, target, ...this.encode(storage, items)]);
    return added.map((one) => one === 1);
  }

  /** The script arguments of some items: their bit positions (bitmap), or the items (RedisBloom). */
  private encode(storage: BloomFilterStorage, items: readonly string[]): (string | number)[] {
    if (storage.backend === 'redisbloom') return items as string[];
    const { bits, hashes } = storage;
    const args: number[] = [hashes];
    for (const item of items) args.push(...bitPositions(item, bits, hashes));
    return args;
  }

  private async inBatches<T>(items: readonly string[], run: (batch: readonly string[]) => Promise<T[]>): Promise<T[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', 'an array of strings', items);
    for (const item of items) checkItem(item);
    if (items.length <= this.options.batchSize) return items.length === 0 ? [] : run(items);
    const results: T[] = [];
    for (let at = 0; at < items.length; at += this.options.batchSize) results.push(...(await run(items.slice(at, at + this.options.batchSize))));
    return results;
  }

}

function keysOf(storage: BloomFilterStorage): [string, string] {
  return [storage.metaKey, storage.baseKey];
}

function checkItem(item: unknown): asserts item is string {
  if (typeof item !== 'string' || item.length === 0 || item.length > MAX_ITEM_LENGTH) {
    throw new InvalidOptionError('item', `a non-empty string of at most ${MAX_ITEM_LENGTH} characters`, typeof item === 'string' && item.length > 64 ? `${item.slice(0, 64)}… (${item.length} characters)` : item);
  }
}
