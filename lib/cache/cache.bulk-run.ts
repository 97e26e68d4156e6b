import { outageOf } from '../core/store-failure.js';
import type { RedisClient } from '../core/redis-client.js';
import { unlinkEntries } from './cache.bulk-delete.js';
import { globToRegExp, type CacheInvalidationBus } from './cache.bus.js';
import { InvalidationAbortedError, InvalidationIncompleteError, type BulkInvalidationOptions } from './cache.errors.js';
import type { L1Tier } from './cache.l1-tier.js';

/**
 * Past this many keys (one chunk), L1 copies are dropped as "every entry", here and on the other
 * instances, not key by key: L1 holds at most a few thousand entries, and refills from Redis.
 */
const MAX_ANNOUNCED_KEYS = 1_000;

/**
 * One bulk invalidation under way: the entries deleted so far, their L1 copies dropped here and
 * on the other instances (key by key for a first chunk, then as "every entry"), progress and
 * abort between chunks, and what a failure part-way means to the caller.
 */
export class BulkRun {
  deleted = 0;
  private announced = 0;
  private everything = false;
  private readonly everyEntryPattern: RegExp;

  constructor(
    private readonly redis: RedisClient,
    private readonly l1: L1Tier,
    private readonly bus: CacheInvalidationBus,
    private readonly everyEntry: string,
    /** What is invalidated, for the errors' messages: `tags "a"` or `pattern "search:*"`. */
    private readonly target: string,
    private readonly options: BulkInvalidationOptions,
  ) {
    this.everyEntryPattern = globToRegExp(everyEntry);
  }

  /**
   * Deletes a chunk of entries. Their L1 copies are dropped, and announced with `announce` (a
   * pattern invalidation announces its pattern instead), whether the delete succeeded or not.
   */
  async delete(valueKeys: readonly string[], announce = true): Promise<void> {
    try {
      // Read after the await: the masters' scans delete concurrently.
      const deleted = await unlinkEntries(this.redis, valueKeys);
      this.deleted += deleted;
    } finally {
      await this.drop(valueKeys, announce);
    }
  }

  /** Before anything is done: a caller that aborted already gets its error, and nothing is deleted. */
  start(): void {
    this.stopIfAborted();
  }

  /** Between two chunks: reports progress, and stops if the caller aborted. */
  stepDone(): void {
    this.options.onProgress?.(this.deleted);
    this.stopIfAborted();
  }

  private stopIfAborted(): void {
    if (this.options.signal?.aborted) throw new InvalidationAbortedError(this.target, this.deleted, { cause: this.options.signal.reason });
  }

  /** What the caller gets for a failure part-way: an outage says how far it got; anything else is thrown as it is. */
  failure(error: unknown): unknown {
    if (error instanceof InvalidationAbortedError) return error;
    const outage = outageOf(error);
    return outage === undefined ? error : new InvalidationIncompleteError(this.target, this.deleted, outage, { cause: error });
  }

  /** At the end, success or not: after "every entry", L1s drop again what they refilled meanwhile. */
  async announce(): Promise<void> {
    if (this.everything) await this.dropEverything();
  }

  /** Drops a chunk's L1 copies here, and (with `announce`) on the other instances. */
  private async drop(valueKeys: readonly string[], announce: boolean): Promise<void> {
    if (this.everything) return;
    if (this.announced + valueKeys.length > MAX_ANNOUNCED_KEYS) {
      this.everything = true;
      await this.dropEverything();
      return;
    }
    this.announced += valueKeys.length;
    this.l1.delete(valueKeys);
    if (announce) await this.bus.publish({ keys: [...valueKeys] });
  }

  private async dropEverything(): Promise<void> {
    this.l1.deleteMatching(this.everyEntryPattern);
    await this.bus.publish({ pattern: this.everyEntry });
  }
}
