import { HttpException, HttpStatus } from '@nestjs/common';
import { RedisPatternsError } from '../core/errors.js';

/** How logs and errors name a lock: its keys, quoted. */
export function lockName(keys: readonly string[]): string {
  return keys.map((key) => `"${key}"`).join(', ');
}

/** Why a lock was not acquired: another holder has it, the wait ran out, or Redis could not be reached. */
export type LockBusyReason = 'held' | 'timeout' | 'store-unavailable';

/**
 * A lock could not be acquired. A Nest `HttpException`, so a controller answers 409 Conflict
 * when the lock is busy, and 503 Service Unavailable when Redis could not be reached.
 *
 * @example
 * try { await this.locks.acquire(`order:${id}`, { wait: '2s' }); }
 * catch (error) { if (error instanceof LockNotAcquiredError && error.reason === 'timeout') ... }
 */
export class LockNotAcquiredError extends HttpException {
  constructor(
    readonly keys: readonly string[],
    readonly reason: LockBusyReason,
    readonly waitedMs: number,
    options?: { cause?: unknown },
  ) {
    const status = reason === 'store-unavailable' ? HttpStatus.SERVICE_UNAVAILABLE : HttpStatus.CONFLICT;
    super(
      {
        statusCode: status,
        message: `Lock ${lockName(keys)} not acquired (${reason}${reason === 'store-unavailable' ? '' : ` after ${Math.round(waitedMs)}ms`})`,
        reason,
      },
      status,
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
    super(`Lock ${lockName(keys)} was lost: ${reason}`);
  }
}
