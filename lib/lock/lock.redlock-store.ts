import { isStoreFailure } from '../core/store-failure.js';
import type { AcquireResult, LockKeys, LockStore, SingleNodeStore } from './lock.store.js';

/**
 * Redlock: a lock is held when a majority of independent servers granted it within its lease.
 * Its validity subtracts the time taken and the clock drift (`driftFactor` of the lease, plus
 * 2 ms); with no validity left it is released everywhere and reported as not acquired. The
 * fencing token is the highest of the majority's, written back to the majority's fences before
 * the lock is handed out: any later majority shares a server with it, so later tokens are higher
 * (provided the servers persist their data).
 */
export class RedlockStore implements LockStore {
  readonly exclusive = true;
  private readonly quorum: number;

  constructor(
    private readonly stores: readonly SingleNodeStore[],
    private readonly driftFactor: number,
  ) {
    this.quorum = Math.floor(stores.length / 2) + 1;
  }

  async acquire(keys: LockKeys, token: string, ttlMs: number): Promise<AcquireResult> {
    const started = performance.now();
    const leaseEndMs = Date.now() + ttlMs;
    const attempts = this.stores.map((store) => store.acquire(keys, token, ttlMs));
    const outcome = await this.untilDecided(attempts, (result) => result.acquired);
    if (outcome.passed.length >= this.quorum && ttlMs - (performance.now() - started) - this.drift(ttlMs) > 0) {
      const fencingToken = Math.max(...outcome.passed.map((result) => (result as { fencingToken: number }).fencingToken));
      // The token must reach a majority's fences, or a later majority could hand out a lower one.
      const raised = await Promise.allSettled(outcome.passedBy.map((index) => this.stores[index].raiseFences(keys, fencingToken)));
      const validityMs = ttlMs - (performance.now() - started) - this.drift(ttlMs);
      if (raised.filter((result) => result.status === 'fulfilled').length >= this.quorum && validityMs > 0)
        return { acquired: true, fencingToken, validUntilMs: leaseEndMs - this.drift(ttlMs) };
      this.giveBack(attempts, keys, token, leaseEndMs);
      const failures = raised.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
      if (failures.length > 0) throw mostTelling(failures);
      return { acquired: false, heldForMs: 0, expired: true };
    }
    // Not held: give back whatever was granted, including by servers still to answer.
    this.giveBack(attempts, keys, token, leaseEndMs);
    if (outcome.passed.length >= this.quorum) return { acquired: false, heldForMs: 0, expired: true };
    if (outcome.failed.length > this.stores.length - this.quorum) throw mostTelling(outcome.failed);
    const held = outcome.others.filter((result): result is { acquired: false; heldForMs: number } => !result.acquired);
    return { acquired: false, heldForMs: Math.max(0, ...held.map((result) => result.heldForMs)) };
  }

  async extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined> {
    const started = performance.now();
    const leaseEndMs = Date.now() + ttlMs;
    const outcome = await this.untilDecided(
      this.stores.map((store) => store.extend(keys, token, ttlMs)),
      (validity) => validity !== undefined,
    );
    const validityMs = ttlMs - (performance.now() - started) - this.drift(ttlMs);
    if (outcome.passed.length >= this.quorum && validityMs > 0) return leaseEndMs - this.drift(ttlMs);
    if (outcome.failed.length > this.stores.length - this.quorum) throw mostTelling(outcome.failed);
    return undefined;
  }

  /**
   * Releases everywhere; answers once a majority did (or cannot), the others finishing in the
   * background. Each server that could not be reached is tried again once it is back.
   */
  async release(keys: LockKeys, token: string, untilMs: number): Promise<boolean> {
    const outcome = await this.untilDecided(
      this.stores.map((store) => store.release(keys, token, untilMs)),
      (released) => released,
    );
    return outcome.passed.length > 0;
  }

  /** Releases the grants of an attempt that does not hold, on each server once it answered (one whose attempt failed gave back by itself). */
  private giveBack(attempts: readonly Promise<AcquireResult>[], keys: LockKeys, token: string, untilMs: number): void {
    attempts.forEach((attempt, index) => {
      void attempt.then(
        (result) => result.acquired && this.stores[index].release(keys, token, untilMs).catch(() => undefined),
        () => undefined,
      );
    });
  }

  /**
   * Settles as soon as a majority passed, or a majority can no longer pass: a slow or stalled
   * server does not hold up the decision (its late answer is released or ignored).
   */
  private untilDecided<T>(
    attempts: readonly Promise<T>[],
    passes: (result: T) => boolean,
  ): Promise<{ passed: T[]; passedBy: number[]; others: T[]; failed: unknown[] }> {
    return new Promise((resolve) => {
      const outcome = { passed: [] as T[], passedBy: [] as number[], others: [] as T[], failed: [] as unknown[] };
      let settled = false;
      const check = () => {
        const cannotPass = outcome.others.length + outcome.failed.length > this.stores.length - this.quorum;
        if (!settled && (outcome.passed.length >= this.quorum || cannotPass)) {
          settled = true;
          resolve({
            passed: [...outcome.passed],
            passedBy: [...outcome.passedBy],
            others: [...outcome.others],
            failed: [...outcome.failed],
          });
        }
      };
      attempts.forEach((attempt, index) => {
        void attempt.then(
          (result) => {
            if (passes(result)) {
              outcome.passed.push(result);
              outcome.passedBy.push(index);
            } else outcome.others.push(result);
            check();
          },
          (error: unknown) => {
            outcome.failed.push(error);
            check();
          },
        );
      });
    });
  }

  private drift(ttlMs: number): number {
    return ttlMs * this.driftFactor + 2;
  }
}

/** Of the servers' failures, the one to throw: a bug (a WRONGTYPE...) before an outage, which would hide it. */
function mostTelling(failures: readonly unknown[]): unknown {
  return failures.find((failure) => !isStoreFailure(failure)) ?? failures[0];
}
