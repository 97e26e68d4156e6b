import { mapBounded } from '../core/bounded.js';
import { BULK_CHUNK } from './cache.bulk-delete.js';
import type { CacheInvalidationBus } from './cache.bus.js';
import type { CacheEntries } from './cache.entries.js';
import type { CacheFailures } from './cache.failures.js';
import type { CacheInvalidation } from './cache.invalidation.js';
import type { CacheKeys } from './cache.keys.js';
import type { L1Tier } from './cache.l1-tier.js';
import type { CacheEntryOptions } from './cache.options.js';

/** How many entries of a chunk `warm()` writes at once. */
const WARM_CONCURRENCY = 64;

/** One entry to write with `CacheService.warm()`. */
export interface WarmEntry<T = unknown> {
  key: string;
  value: T;
  options?: CacheEntryOptions<T>;
}

/** `CacheService.warm()`: many entries written a chunk at a time, as `set()` writes one. */
export class CacheWarmer {
  constructor(
    private readonly keys: CacheKeys,
    private readonly entries: CacheEntries,
    private readonly invalidation: CacheInvalidation,
    private readonly l1: L1Tier,
    private readonly bus: CacheInvalidationBus,
    private readonly failures: CacheFailures,
  ) {}

  async warm(entries: readonly WarmEntry[]): Promise<void> {
    for (let at = 0; at < entries.length; at += BULK_CHUNK) {
      const chunk = entries.slice(at, at + BULK_CHUNK).map(({ key, value, options = {} }) => {
        const keys = this.keys.entry(this.keys.value(key));
        return {
          keys,
          value,
          options: options as CacheEntryOptions,
          entry: this.entries.prepare(keys.value, value, options as CacheEntryOptions),
        };
      });
      try {
        // As set() does, a chunk at a time: tagged first, then written, then announced once.
        await this.invalidation.tagMany(
          chunk.map(({ keys, value, options, entry }) => ({ valueKey: keys.value, value, options, pxMs: entry.pxMs })),
        );
        const epoch = this.l1.epoch;
        await mapBounded(chunk, WARM_CONCURRENCY, ({ keys, entry }) => this.entries.write(keys, entry));
        for (const { keys, value, options, entry } of chunk) {
          if (this.l1.uses(options.l1)) this.l1.remember(keys.value, value, entry.encoded, entry.freshUntil, epoch);
          else this.l1.delete([keys.value]);
        }
        await this.bus.publish({ keys: chunk.map(({ keys }) => keys.value) });
      } catch (error) {
        this.failures.failClosed(error);
      }
    }
  }
}
