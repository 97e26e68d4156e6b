import { randomBytes } from 'node:crypto';
import type { Subscription } from 'rxjs';
import { CountedMetric, type RedisMetrics } from '../core/metrics.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { describeError, isStoreFailure } from '../core/store-failure.js';
import type { PubSubService } from '../pubsub/pubsub.service.js';
import { lockName, LockNotAcquiredError } from './lock.exception.js';
import { FairLockStore } from './lock.fair-store.js';
import type { ReleaseLog } from './lock.release-retries.js';
import type { LockKeys } from './lock.store.js';

/** The `lock.fair` options, in milliseconds. */
export interface ResolvedFairOptions {
  /** How long a waiter keeps its place without trying again (by Redis's clock). */
  waiterLeaseMs: number;
  /** How often a waiter tries again without being told (and so renews its place). */
  pollMs: number;
}

/** A fair lock granted to a waiter: what its `Lock` is made of. */
export interface FairGrant {
  token: string;
  fencingToken: number;
  /** Until when it is surely valid (see `AcquireResult`). */
  validUntilMs: number;
}

/** One acquisition waiting in line on this instance. */
interface Waiter {
  /** Told that its turn may have come since its last try. */
  notified: boolean;
  /** Ends its pause between tries, while it pauses. */
  wake: (() => void) | undefined;
}

const NOTIFIED = { cause: 'notified' } as const;
const POLLED = { cause: 'polled' } as const;

/**
 * The waiting side of fair locks, for one `LockService`. Every acquisition has a waiter id
 * (`<instance>.<n>`); it tries, and while it is not its turn it waits in the lock's queue in Redis
 * and pauses. A release (or a waiter leaving) names the waiters whose turn may have come; each is
 * told on its instance's channel, `lock:fair:<instance>`, through `PubSubService` (sharded on a
 * Cluster of Redis 7, like every channel of the app), and tries again at once. Pub/sub is at most
 * once: a waiter also tries every `pollMs`, which renews its place (its heartbeat lease) too, so a
 * lost message costs at most one poll, and a crashed waiter is dropped when its lease ends.
 */
export class FairLocks {
  readonly store: FairLockStore;
  /** This instance's part of every waiter id, and of its channel's name. */
  private readonly instance = randomBytes(8).toString('hex');
  private waiterCount = 0;
  private readonly waiters = new Map<string, Waiter>();
  /** The acquisitions under way, for shutdown. */
  private readonly waits = new Set<Promise<unknown>>();
  /** This instance's subscription to its channel, made on the first wait and kept. */
  private listening: { ready: boolean; confirmed: Promise<void>; subscriptions: Subscription[] } | undefined;
  private stopped = false;
  /** Resolves at shutdown, ending a wait for the subscription. */
  private readonly stopping: Promise<void>;
  private markStopping!: () => void;
  private readonly wakeups: CountedMetric;

  constructor(
    client: RedisClient,
    outage: OutageLog,
    private readonly log: ReleaseLog,
    keyPrefix: string,
    private readonly pubsub: PubSubService,
    private readonly settings: ResolvedFairOptions,
    metrics: RedisMetrics,
  ) {
    this.store = new FairLockStore(client, outage, log, keyPrefix, (waiters) => this.wake(waiters));
    this.stopping = new Promise((resolve) => (this.markStopping = resolve));
    this.wakeups = new CountedMetric(metrics, {
      name: 'lock_fair_wakeups_total',
      help: 'Fair lock waiters that tried again, by cause: notified (a release told them, or the subscriber reconnected) or polled (their poll interval passed)',
      labelNames: ['cause'],
    });
  }

  /**
   * Waits in line for the lock on `keys`, up to `waitMs` from `started` (performance.now()); with
   * no wait, one try that never queues. `nextToken` gives each try its own token.
   * @throws LockNotAcquiredError ('held', 'timeout', or 'store-unavailable' for an outage or a shutdown); any other error of Redis as it is.
   */
  acquire(keys: LockKeys, options: { ttlMs: number; waitMs: number }, started: number, nextToken: () => string): Promise<FairGrant> {
    const waiting = this.waitInLine(keys, options, started, nextToken);
    this.waits.add(waiting);
    const forget = () => this.waits.delete(waiting);
    void waiting.then(forget, forget);
    return waiting;
  }

  /** At shutdown: every waiter stops waiting (and leaves its queues), and the subscription ends. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.markStopping();
    for (const id of this.waiters.keys()) this.notify(id);
    await Promise.allSettled([...this.waits]);
    if (this.listening) this.unlisten(this.listening);
  }

  private async waitInLine(
    keys: LockKeys,
    { ttlMs, waitMs }: { ttlMs: number; waitMs: number },
    started: number,
    nextToken: () => string,
  ): Promise<FairGrant> {
    const id = `${this.instance}.${++this.waiterCount}`;
    const waiter: Waiter = { notified: false, wake: undefined };
    this.waiters.set(id, waiter);
    const heartbeatMs = waitMs > 0 ? this.settings.waiterLeaseMs : 0;
    // Subscribed before the first try: no release after it can go unheard.
    let heard = this.listening?.ready === true;
    let queued = false;
    try {
      for (;;) {
        if (this.stopped)
          throw new LockNotAcquiredError(keys.names, 'store-unavailable', performance.now() - started, {
            cause: new Error('the app is shutting down'),
          });
        const token = nextToken();
        waiter.notified = false; // a notice that came before this try is answered by it
        const result = await this.store.attempt(keys, { waiter: id, token, ttlMs, heartbeatMs }).catch((error: unknown) => {
          if (!isStoreFailure(error)) throw error;
          throw new LockNotAcquiredError(keys.names, 'store-unavailable', performance.now() - started, { cause: error });
        });
        if (result.acquired) return { token, fencingToken: result.fencingToken, validUntilMs: result.validUntilMs };
        queued = heartbeatMs > 0;
        const waitedMs = performance.now() - started;
        const leftMs = waitMs - waitedMs;
        if (leftMs <= 0) throw new LockNotAcquiredError(keys.names, waitMs === 0 && !result.expired ? 'held' : 'timeout', waitedMs);
        const pauseMs = Math.min(leftMs, this.settings.pollMs);
        if (heard) await this.pause(waiter, pauseMs);
        else {
          // Subscribed only now: a release since the try above went unheard, so try again at once.
          heard = true;
          await this.listen(pauseMs);
        }
      }
    } catch (error) {
      if (queued) await this.leave(keys, id);
      throw error;
    } finally {
      this.waiters.delete(id);
    }
  }

  /** Leaves the queues; when that fails, the waiter's heartbeat lease ends soon and drops it. */
  private async leave(keys: LockKeys, id: string): Promise<void> {
    try {
      await this.store.leave(keys, id);
    } catch (error) {
      if (!isStoreFailure(error))
        this.log.warn(
          `Could not leave the queue of fair lock ${lockName(keys.names)} (its place ends with its heartbeat lease): ${describeError(error)}`,
        );
    }
  }

  /** Until notified, or `ms` have passed. */
  private pause(waiter: Waiter, ms: number): Promise<void> {
    if (waiter.notified) {
      this.wakeups.add(NOTIFIED);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiter.wake = undefined;
        this.wakeups.add(POLLED);
        resolve();
      }, ms);
      waiter.wake = () => {
        clearTimeout(timer);
        waiter.wake = undefined;
        this.wakeups.add(NOTIFIED);
        resolve();
      };
    });
  }

  private notify(id: unknown): void {
    const waiter = typeof id === 'string' ? this.waiters.get(id) : undefined;
    if (!waiter) return;
    waiter.notified = true;
    waiter.wake?.();
  }

  /** Subscribes this instance to its channel (once), and waits up to `ms` for Redis to confirm it. */
  private async listen(ms: number): Promise<void> {
    if (!this.listening) {
      const channel = channelOf(this.instance);
      const listening = { ready: false, confirmed: Promise.resolve(), subscriptions: [] as Subscription[] };
      this.listening = listening;
      listening.subscriptions.push(
        this.pubsub.subscribe<unknown>(channel).subscribe({
          next: (ids) => (Array.isArray(ids) ? ids : []).forEach((id) => this.notify(id)),
          // Redis could not be reached: the next wait subscribes again; polls serve meanwhile.
          error: () => this.unlisten(listening),
        }),
        // Messages may have been missed while the subscriber was away: every waiter tries again.
        this.pubsub.reconnected.subscribe(() => [...this.waiters.keys()].forEach((id) => this.notify(id))),
      );
      listening.confirmed = this.pubsub.whenSubscribed(channel).then(
        () => void (listening.ready = true),
        () => undefined,
      );
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.listening.confirmed, this.stopping, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  private unlisten(listening: NonNullable<FairLocks['listening']>): void {
    if (this.listening === listening) this.listening = undefined;
    for (const subscription of listening.subscriptions) subscription.unsubscribe();
  }

  /** Tells waiters that their turn may have come: those of this instance at once, the others on their instance's channel. */
  private async wake(ids: readonly string[]): Promise<void> {
    const byInstance = new Map<string, string[]>();
    for (const id of ids) {
      const instance = id.slice(0, id.indexOf('.'));
      byInstance.set(instance, [...(byInstance.get(instance) ?? []), id]);
    }
    await Promise.all(
      [...byInstance].map(async ([instance, waiters]) => {
        if (instance === this.instance) return waiters.forEach((id) => this.notify(id));
        try {
          await this.pubsub.publish(channelOf(instance), waiters);
        } catch (error) {
          // An outage is logged by pub/sub; either way the waiters find their turn at their next poll.
          if (!isStoreFailure(error))
            this.log.warn(`Could not tell fair lock waiters their turn has come (they poll): ${describeError(error)}`);
        }
      }),
    );
  }
}

/** The channel of an instance's waiters. */
function channelOf(instance: string): string {
  return `lock:fair:${instance}`;
}
