import type { ModuleRef } from '@nestjs/core';

/**
 * Items to fill a filter with: one by one or in arrays, from an array, a generator, an async
 * iterable (a database cursor), or a Promise of any of these (`repository.allIds()`).
 */
export type BloomItems =
  | AsyncIterable<string | readonly string[]>
  | Iterable<string | readonly string[]>
  | Promise<Iterable<string | readonly string[]> | AsyncIterable<string | readonly string[]>>;

/**
 * A Bloom filter's options, given to `BloomFilterService.filter(name, options)` or declared
 * under `bloomFilters` in the module options.
 *
 * @example
 * bloomFilters: { products: { capacity: 1_000_000, errorRate: 0.001, prefill: (ref) => ref.get(ProductsRepository, { strict: false }).allIds() } }
 */
export interface BloomFilterOptions {
  /** How many items the filter is sized for: past it, the false-positive rate grows. */
  capacity: number;
  /** The false-positive rate at capacity, between 0 and 1 (exclusive). */
  errorRate: number;
  /** `'auto'`: RedisBloom when the server has BF.*, else the bitmap. @default 'auto' */
  backend?: 'auto' | 'redisbloom' | 'bitmap';
  /**
   * Fills the filter at startup (from the database, say), when it has never been built: until
   * then it answers "might contain" for everything, so nothing real is hidden. The items may
   * come one by one or in arrays, or as a Promise of them. Runs in the background;
   * `BloomFilter.whenBuilt()` waits for it.
   * @example
   * prefill: (ref) => ref.get(ProductsRepository, { strict: false }).allIds() // Promise<string[]>
   */
  prefill?: (moduleRef: ModuleRef) => BloomItems;
  /** Items per script call in batches and rebuilds, at most 10000. @default 1000 */
  batchSize?: number;
  /**
   * The filter starts built and empty: every item that exists will be added through it (a new
   * data set). Without it (and without `prefill`), the filter lets everything through until a
   * `rebuild` fills it, so ids that exist but were never added are not hidden. @default false
   */
  startsEmpty?: boolean;
}

/** What `BloomFilter.info()` reports. */
export interface BloomFilterInfo {
  backend: 'redisbloom' | 'bitmap';
  capacity: number;
  errorRate: number;
  /** Items added to the live filter (new ones only). */
  items: number;
  /** Memory of the live filter. */
  sizeBytes: number;
  /** Whether the filter has been built (false while it waits for its first prefill or rebuild). */
  built: boolean;
  /** More items than `capacity`: the false-positive rate is above `errorRate`. */
  overCapacity: boolean;
}
