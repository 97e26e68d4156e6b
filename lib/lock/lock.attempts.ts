import type { RandomTokens } from '../core/random-tokens.js';
import { isStoreFailure } from '../core/store-failure.js';
import { LockNotAcquiredError } from './lock.exception.js';
import type { FairGrant } from './lock.fair.js';
import { LocalWaiters, type PlaceInLine } from './lock.local-waiters.js';
import type { ResolvedAcquireOptions, ResolvedLockOptions } from './lock.options-validator.js';
import type { AcquireResult, LockKeys, LockStore } from './lock.store.js';

/**
 * The attempts of `LockService`'s acquisitions (all but fair locks'): each tries, and while the
 * lock is busy pauses with jittered backoff and tries again, until granted or its wait is over.
 */
export class LockAttempts {
  /** Acquisitions pausing between attempts, woken by this instance's releases (fair locks have their own line). */
  private readonly waiters = new LocalWaiters();
  private stopped = false;

  constructor(
    private readonly retry: ResolvedLockOptions['retry'],
    private readonly tokens: RandomTokens,
  ) {}

  /**
   * Tries for the lock until it is granted, or the wait is over (retrying with jitter). An
   * exclusive acquisition whose first attempt failed waits in its keys' line (see LocalWaiters).
   * @throws LockNotAcquiredError ('held', 'timeout', or 'store-unavailable' for an outage or a shutdown); any other error of the store as it is.
   */
  async untilGranted(
    userKeys: string[],
    keys: LockKeys,
    options: ResolvedAcquireOptions,
    store: LockStore,
    started: number,
  ): Promise<FairGrant> {
    let place: PlaceInLine | undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        const result = await this.tryOnce(userKeys, keys, options, store, started);
        if (result.acquired) return result;
        const waitedMs = performance.now() - started;
        const leftMs = options.waitMs - waitedMs;
        if (leftMs <= 0) throw new LockNotAcquiredError(userKeys, options.waitMs === 0 && !result.expired ? 'held' : 'timeout', waitedMs);
        const { minDelayMs, maxDelayMs } = this.retry;
        // Full jitter, never past the wait, and never longer than the holder's remaining lease.
        const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 20), leftMs, Math.max(minDelayMs, result.heldForMs));
        if (store.exclusive) place ??= this.waiters.join(keys.fences);
        // A release of this instance ends the pause early; behind another in line, it waits its turn first.
        await this.waiters.pause(keys.fences, Math.max(1, Math.random() * ceiling), place, leftMs);
      }
    } finally {
      if (place) this.waiters.leave(place);
    }
  }

  /** A release of this instance: the first waiter of those keys' line tries again now. */
  released(fences: readonly string[]): void {
    this.waiters.released(fences);
  }

  /** At shutdown: no attempt is made any more, and waiters pausing or in line give up now. */
  stop(): void {
    this.stopped = true;
    this.waiters.wakeAll();
  }

  /** One attempt, with a new token: a late release of an earlier attempt cannot touch this one's grant. */
  private async tryOnce(
    userKeys: string[],
    keys: LockKeys,
    options: ResolvedAcquireOptions,
    store: LockStore,
    started: number,
  ): Promise<AcquireResult & { token: string }> {
    if (this.stopped)
      throw new LockNotAcquiredError(userKeys, 'store-unavailable', performance.now() - started, {
        cause: new Error('the app is shutting down'),
      });
    const token = this.tokens.next();
    try {
      return { token, ...(await store.acquire(keys, token, options.ttlMs)) };
    } catch (error) {
      // Only an outage fails closed as 'store-unavailable'; a bug is not Redis being away.
      if (!isStoreFailure(error)) throw error;
      throw new LockNotAcquiredError(userKeys, 'store-unavailable', performance.now() - started, { cause: error });
    }
  }
}
