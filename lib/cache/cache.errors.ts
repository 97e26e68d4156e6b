import { RedisPatternsError } from '../core/errors.js';
import { RedisUnavailableError, type OutageKind } from '../core/store-failure.js';

/**
 * A tag, pattern or clear invalidation that Redis stopped answering part-way: `deleted` entries
 * are gone, the rest are not. Calling it again finishes the job (the entries a tag still lists, or
 * the keys a pattern still matches, are what remain). A `RedisUnavailableError`: 503 on a
 * controller.
 *
 * @example
 * try { await cache.invalidateTags(['products']); }
 * catch (error) { if (error instanceof InvalidationIncompleteError) retryLater(() => cache.invalidateTags(['products'])); }
 */
export class InvalidationIncompleteError extends RedisUnavailableError {
  constructor(
    /** What was invalidated, as the message names it: `tags "a", "b"` or `pattern "search:*"`. */
    readonly target: string,
    /** How many entries were deleted before Redis stopped answering. */
    readonly deleted: number,
    outage: OutageKind,
    options?: { cause?: unknown },
  ) {
    super('the cache', outage, options);
    this.name = 'InvalidationIncompleteError';
    this.message = `${this.message}: the invalidation of ${target} stopped after deleting ${deleted} entries; call it again to finish it`;
  }
}

/**
 * An invalidation stopped by its `AbortSignal`: `deleted` entries are gone, the rest are not.
 * Calling it again finishes the job.
 */
export class InvalidationAbortedError extends RedisPatternsError {
  constructor(
    /** What was invalidated, as the message names it: `tags "a", "b"` or `pattern "search:*"`. */
    readonly target: string,
    /** How many entries were deleted before it stopped. */
    readonly deleted: number,
    options?: { cause?: unknown },
  ) {
    super(`The cache invalidation of ${target} was aborted after deleting ${deleted} entries; call it again to finish it.`, options);
  }
}

/** What a long invalidation may be given. */
export interface BulkInvalidationOptions {
  /**
   * Called after each chunk (a thousand entries) with how many entries were deleted so far.
   * @example
   * await cache.invalidateTags(['catalog'], { onProgress: (deleted) => logger.log(`${deleted} deleted`) });
   */
  onProgress?: (deleted: number) => void;
  /**
   * Stops the invalidation between two chunks: it rejects with an `InvalidationAbortedError`.
   * @example
   * await cache.clear('search:', { signal: AbortSignal.timeout(60_000) });
   */
  signal?: AbortSignal;
}
