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
  /** Backoff between attempts while waiting: exponential from `minDelay` to `maxDelay`, with full jitter. */
  retry?: { minDelay?: Duration; maxDelay?: Duration };
  /**
   * Redlock: take each lock on a majority of these independent servers (named `connections`)
   * instead of on the main connection.
   */
  redlock?: { connections: readonly string[]; driftFactor?: number };
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
}
