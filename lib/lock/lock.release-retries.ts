import { backoffDelay } from '../core/redis-connection.factory.js';
import type { RedisClient } from '../core/redis-client.js';
import { isStoreFailure } from '../core/store-failure.js';
import { lockName } from './lock.exception.js';
import type { LockKeys } from './lock.store.js';

/**
 * How many releases wait at most on one connection. Past it the oldest is given up: its lease
 * ends first (for locks of one ttl), and its lock frees itself then.
 */
export const MAX_PENDING_RELEASES = 1_000;

/** How many retried releases are on their way to Redis at once. */
export const RELEASE_RETRY_CONCURRENCY = 8;

/** A release to try again: the lock's keys, and when its lease ends (its keys have expired by then). */
interface PendingRelease {
  keys: LockKeys;
  untilMs: number;
}

/** Where a connection's releases report what they give up: the lock service's logger. */
export interface ReleaseLog {
  /** The name of the module connection. */
  connection: string;
  warn(message: string): void;
}

/**
 * Releases on one connection that failed because Redis could not answer, tried again once it can:
 * as soon as the connection is ready again, or, while it stays up (a command timeout, a Cluster
 * failover, a server refusing writes), after a backoff of up to 2 s. Each is given up at the end
 * of its lease, when its keys have expired anyway. A release checks the token, so a retry never
 * removes a lock someone else took meanwhile.
 *
 * Bounded, so that an outage under load cannot pile releases up and send them all at once to a
 * Redis that has just recovered: at most {@link MAX_PENDING_RELEASES} wait (the oldest are given
 * up first, logged once), and they are sent {@link RELEASE_RETRY_CONCURRENCY} at a time.
 *
 * Without this, a lock released during an outage would stay taken after Redis came back (with
 * persistence on) until its lease ran out.
 */
export class ReleaseRetries {
  private readonly pending = new Map<string, PendingRelease>();
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private retrying = false;
  /** Whether releases were given up for the cap since nothing was last pending (logged once for all of them). */
  private overflowed = false;

  constructor(
    private readonly client: RedisClient,
    private readonly release: (keys: LockKeys, token: string) => Promise<boolean>,
    private readonly log: ReleaseLog,
  ) {
    client.on('ready', () => void this.retry());
  }

  /** Tries the release of `token` again when Redis is back, until `untilMs`. */
  add(keys: LockKeys, token: string, untilMs: number): void {
    if (untilMs <= Date.now() || this.client.status === 'end') return;
    if (this.pending.size >= MAX_PENDING_RELEASES && !this.pending.has(token)) this.giveUpOldest();
    this.pending.set(token, { keys, untilMs });
    this.schedule();
  }

  /** A retry after a backoff, for a connection that stays up; a connection that comes back triggers one at once. */
  private schedule(): void {
    if (this.timer !== undefined || this.retrying) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.retry();
      },
      backoffDelay(++this.attempt, 100, 2_000),
    );
    this.timer.unref();
  }

  /** One round: every pending release is sent (a few at a time) while the connection is ready, then the next round is scheduled. */
  private async retry(): Promise<void> {
    if (this.retrying) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.retrying = true;
    const due = [...this.pending.keys()];
    let next = 0;
    const sendNext = async (): Promise<void> => {
      while (next < due.length) await this.retryOne(due[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(RELEASE_RETRY_CONCURRENCY, due.length) }, sendNext));
    this.retrying = false;
    if (this.pending.size > 0) return this.schedule();
    this.attempt = 0;
    this.overflowed = false;
  }

  /** Sends one pending release, unless its lease has ended; it stays pending while Redis is still away. */
  private async retryOne(token: string): Promise<void> {
    const entry = this.pending.get(token);
    if (!entry) return; // given up for the cap meanwhile
    if (entry.untilMs <= Date.now() || this.client.status === 'end') {
      this.pending.delete(token);
      return;
    }
    // Not connected: refused without being sent. The 'ready' event starts the next round.
    if (this.client.status !== 'ready') return;
    try {
      await this.release(entry.keys, token);
    } catch (error) {
      if (isStoreFailure(error)) return; // still away: stays pending
      // Not one a retry mends (a WRONGTYPE): said once, as the first release would have.
      this.log.warn(
        `Could not release lock ${lockName(entry.keys.names)} on Redis connection "${this.log.connection}" when trying again after an outage (its lease will run out by itself): ${(error as Error)?.message ?? error}`,
      );
    }
    this.pending.delete(token);
  }

  /** Makes room under the cap: forgets the release added first, and says so once per outage. */
  private giveUpOldest(): void {
    const [oldest] = this.pending.keys();
    this.pending.delete(oldest);
    if (this.overflowed) return;
    this.overflowed = true;
    this.log.warn(
      `Over ${MAX_PENDING_RELEASES} lock releases are waiting for Redis connection "${this.log.connection}": the oldest are given up, and their locks stay taken until their leases run out`,
    );
  }
}
