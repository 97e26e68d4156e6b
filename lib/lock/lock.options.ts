import type { Duration } from '../core/duration.js';

/**
 * Options of distributed locks, under `lock` in the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({
 *   connection,
 *   connections: { lockA: { host: 'redis-a' }, lockB: { host: 'redis-b' }, lockC: { host: 'redis-c' } },
 *   lock: { ttl: '10s', redlock: { connections: ['lockA', 'lockB', 'lockC'] } },
 * });
 */
export interface LockOptions {
  /** The lease: how long a lock lives unless it is extended. @default '30s' */
  ttl?: Duration;
  /** How long `acquire` tries before giving up (0: try once). @default 0 */
  wait?: Duration;
  /**
   * Backoff between attempts while waiting: exponential from `minDelay` to `maxDelay`, with full
   * jitter. A release by the waiter's own instance ends the pause of one waiter on its key at once.
   * A writer waiting for a read-write lock renews its intent once less than two thirds of it are
   * left; the intent ends within 3 × `maxDelay` (at least 1 s) of the writer's last attempt.
   */
  retry?: { minDelay?: Duration; maxDelay?: Duration };
  /**
   * Redlock: take each lock on a majority of these independent servers (named `connections`)
   * instead of on the main connection.
   */
  redlock?: { connections: readonly string[]; driftFactor?: number };
  /**
   * Fair locks (`fair: true` on an acquisition): a waiter tries again every `poll` when no
   * release told it its turn may have come, and each try renews its place in line for
   * `waiterLease` (by Redis's clock). A waiter that stops trying (it crashed, or its process
   * stalled) loses its place when that lease ends. `poll` must be at most half of `waiterLease`.
   * @default { waiterLease: '3s', poll: '1s' }
   * @example
   * lock: { fair: { waiterLease: '10s', poll: '2s' } }
   */
  fair?: { waiterLease?: Duration; poll?: Duration };
}

/** Options of one acquisition; unset ones come from the module's `lock` options. */
export interface AcquireOptions {
  ttl?: Duration;
  wait?: Duration;
  /**
   * Renew the lease every ttl/3 until the lock is released. On by default for `using` and
   * `@WithLock`, off for `acquire` and `tryAcquire` (whose caller releases).
   */
  autoExtend?: boolean;
  /**
   * Serve waiters in the order they asked, across instances, instead of whoever retries first
   * (see `lock.fair`). Waiters are told of a release over pub/sub. Plain acquisitions of the same
   * key do not queue. Not available with `lock.redlock`.
   * @default false
   * @example
   * await this.locks.using(`ticket-desk:${desk}`, serveNext, { fair: true, wait: '30s' });
   */
  fair?: boolean;
}

/**
 * Options of {@link WithLock}.
 *
 * @example
 * @WithLock<[string]>({ key: (orderId) => `order:${orderId}`, ttl: '10s', wait: '5s' })
 * async pay(orderId: string) { ... }
 */
export interface WithLockOptions<A extends unknown[] = unknown[]> extends AcquireOptions {
  /** The lock's key, or several (taken together, all or none), or a function of the arguments. */
  key: string | readonly string[] | ((...args: A) => string | readonly string[]);
  /** When the lock is busy: throw `LockNotAcquiredError` (HTTP 409), or skip the call (it returns undefined). @default 'throw' */
  onBusy?: 'throw' | 'skip';
  /**
   * Hold a side of the read-write lock on `key` (one key) instead of a plain lock: `'read'`
   * (shared with other readers) or `'write'` (exclusive). See `LockService.readWrite`.
   * @example
   * @WithLock<[string]>({ key: (name) => `config:${name}`, mode: 'read', wait: '2s' })
   */
  mode?: 'read' | 'write';
}

/** Injection token of the resolved `lock` section (`ResolvedLockOptions`). */
export const LOCK_OPTIONS = Symbol('RedisPatterns:LockOptions');
