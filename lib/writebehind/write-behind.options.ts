import type { Duration } from '../core/duration.js';

/**
 * How `@WriteBehind` caches and persists a method's writes.
 * @example
 * @WriteBehind({ key: (user: User) => `user:${user.id}`, ttl: '10m' })
 * async save(user: User) { await this.db.users.upsert(user); }
 */
export interface WriteBehindOptions<A extends unknown[]> {
  /** The cache key the value is written to, which is also the key writes coalesce by. */
  key: (...args: A) => string;
  /** What readers see in the cache. @default the first argument */
  value?: (...args: A) => unknown;
  /** How long the cache entry lives. @default the cache's `ttl` */
  ttl?: Duration;
  /** The queue that carries the persisting jobs. @default 'write-behind' */
  queue?: string;
  /** The target's name, the same on every instance. @default `<ClassName>.<method>` */
  name?: string;
}

/** How far behind the persisting side is. */
export interface WriteBehindLag {
  /** Keys written but not persisted yet. */
  pending: number;
  /** How long the oldest of them has waited, in ms (0 when none). */
  oldestMs: number;
}
