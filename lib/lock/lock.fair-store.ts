import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import type { ReleaseLog } from './lock.release-retries.js';
import { SingleNodeStore, type AcquireResult, type LockKeys } from './lock.store.js';

const queuePrelude = new URL('./lock-fair-queue.lua', import.meta.url);
const acquireScript = RedisScript.fromFile(new URL('./lock-fair-acquire.lua', import.meta.url), queuePrelude);
const releaseScript = RedisScript.fromFile(new URL('./lock-fair-release.lua', import.meta.url), queuePrelude);

/** One try of a waiter: its id (its place in the queues), the token to hold the lock with, the lease. */
export interface FairAttempt {
  waiter: string;
  token: string;
  ttlMs: number;
  /** How long the waiter's place is kept without a renewal (by Redis's clock); 0: try once, never queue. */
  heartbeatMs: number;
}

/**
 * Fair locks on one connection: the lock keys and fences of plain locks (so fair and plain
 * acquisitions of a key exclude each other, with one sequence of fencing tokens), plus a queue of
 * waiters per key, `<prefix>lock-queue:<key>` and `<prefix>lock-heartbeat:<key>` in the lock key's
 * hash tag (see lock-fair-queue.lua). A lock is granted only to the first live waiter of every
 * queue of its keys. Renewal is a plain lock's; a release (or a waiter leaving) names the waiters
 * whose turn may have come, and `wake` tells them.
 */
export class FairLockStore extends SingleNodeStore {
  constructor(
    client: RedisClient,
    outage: OutageLog,
    log: ReleaseLog,
    /** The module's key prefix, which every lock key starts with. */
    private readonly keyPrefix: string,
    /** Tells waiters (on any instance) that their turn may have come. Never throws. */
    private readonly wake: (waiters: readonly string[]) => Promise<void>,
  ) {
    super(client, outage, log);
  }

  /** One try that never queues (the `LockStore` contract): granted only when no one holds or waits. */
  override acquire(keys: LockKeys, token: string, ttlMs: number): Promise<AcquireResult> {
    return this.attempt(keys, { waiter: token, token, ttlMs, heartbeatMs: 0 });
  }

  /** Takes the lock if it is the waiter's turn; otherwise the waiter joins the queues, or renews its place there. */
  attempt(keys: LockKeys, { waiter, token, ttlMs, heartbeatMs }: FairAttempt): Promise<AcquireResult> {
    const redisKeys = [...keys.locks, ...keys.fences, ...this.queueKeys(keys)];
    return this.grant(keys, token, ttlMs, () =>
      acquireScript.run<[number, number]>(this.client, redisKeys, [waiter, token, ttlMs, heartbeatMs]),
    );
  }

  /** Takes a waiter that stops waiting out of the queues, waking the next one if the lock is free. */
  async leave(keys: LockKeys, waiter: string): Promise<void> {
    await this.releaseOrLeave(keys, '', waiter);
  }

  protected override async releaseNow(keys: LockKeys, token: string): Promise<boolean> {
    return (await this.releaseOrLeave(keys, token, '')) > 0;
  }

  private async releaseOrLeave(keys: LockKeys, token: string, waiter: string): Promise<number> {
    const [released, waiters] = await this.outage.guard(
      releaseScript.run<[number, string[]]>(this.client, [...keys.locks, ...this.queueKeys(keys)], [token, waiter]),
    );
    if (waiters.length > 0) await this.wake(waiters);
    return released;
  }

  /** Each key's queue, then each key's heartbeats: `<prefix>lock:<part>` gives `<prefix>lock-queue:<part>` and `<prefix>lock-heartbeat:<part>`. */
  private queueKeys(keys: LockKeys): string[] {
    const parts = keys.locks.map((lock) => lock.slice(`${this.keyPrefix}lock:`.length));
    return [
      ...parts.map((part) => `${this.keyPrefix}lock-queue:${part}`),
      ...parts.map((part) => `${this.keyPrefix}lock-heartbeat:${part}`),
    ];
  }
}
