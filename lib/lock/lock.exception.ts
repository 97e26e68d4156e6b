import { ConflictException } from '@nestjs/common';
import { RedisPatternsError } from '../core/errors.js';

/** Why a lock was not acquired: another holder has it, the wait ran out, or Redis could not be reached. */
export type LockBusyReason = 'held' | 'timeout' | 'store-unavailable';

/**
 * A lock could not be acquired. A Nest `ConflictException`, so a controller answers 409.
 *
 * @example
 * try { await this.locks.acquire(`order:${id}`, { wait: '2s' }); }
 * catch (error) { if (error instanceof LockNotAcquiredError && error.reason === 'timeout') ... }
 */
export class LockNotAcquiredError extends ConflictException {
  constructor(
    readonly keys: readonly string[],
    readonly reason: LockBusyReason,
    readonly waitedMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      { statusCode: 409, message: `Lock ${keys.map((key) => `"${key}"`).join(', ')} not acquired (${reason}${reason === 'store-unavailable' ? '' : ` after ${Math.round(waitedMs)}ms`})`, reason },
      { cause: options?.cause },
    );
    this.name = 'LockNotAcquiredError';
  }

  /** The first (or only) key. */
  get key(): string {
    return this.keys[0];
  }
}

/** The lock's lease was lost (its key expired, was deleted, or was taken by someone else). */
export class LockLostError extends RedisPatternsError {
  constructor(
    readonly keys: readonly string[],
    reason: string,
  ) {
    super(`Lock ${keys.map((key) => `"${key}"`).join(', ')} was lost: ${reason}`);
  }
}
