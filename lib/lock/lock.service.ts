import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { InvalidOptionError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { MaxmemoryPolicyCheck } from '../core/maxmemory-policy.check.js';
import { isCluster } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RESOLVED_OPTIONS } from '../core/redis-patterns.constants.js';
import type { ResolvedRedisPatternsOptions } from '../core/redis-patterns.options.js';
import { Lock, type LockOwner } from './lock.js';
import { LockNotAcquiredError } from './lock.exception.js';
import type { AcquireOptions } from './lock.options.js';
import { resolveAcquireOptions, type ResolvedAcquireOptions } from './lock.options-validator.js';
import { RedlockStore, SingleNodeStore, type LockKeys, type LockStore } from './lock.store.js';

/**
 * Distributed locks: on the main connection, or with Redlock on a majority of independent servers
 * (`lock.redlock`). Release and renewal only ever touch the caller's own lock (token-checked in
 * Lua); every acquisition gets a fencing token; Redis down means `LockNotAcquiredError` with
 * reason `'store-unavailable'`, never running unlocked.
 *
 * A lock is enough to avoid doing work twice (efficiency). When correctness depends on it (a
 * paused process may still write after its lease ran out), the protected resource must check the
 * fencing token and refuse writes with a token older than one it has seen.
 *
 * @example
 * await this.locks.using(`order:${id}`, async (lock) => {
 *   await this.orders.markPaid(id, { fencingToken: lock.fencingToken });
 * }, { wait: '5s' });
 */
@Injectable()
export class LockService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns:Lock');
  private readonly store: LockStore;
  private readonly current$ = new AsyncLocalStorage<Lock>();
  private readonly held = new Set<Lock>();
  private readonly cluster: boolean;
  private readonly tokens = new TokenSource();
  private shuttingDown = false;
  private readonly owner: LockOwner;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    maxmemoryPolicy: MaxmemoryPolicyCheck,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedRedisPatternsOptions,
  ) {
    const { redlock } = options.lock;
    this.cluster = redlock ? redlock.connections.some((name) => isCluster(connections.get(name))) : isCluster(connections.get());
    // An evicted lock key breaks exclusion; an evicted fence key resets the tokens.
    if (options.lock.configured || withLockDefined) maxmemoryPolicy.declare('locks', 'durable');
    this.store = redlock
      ? new RedlockStore(redlock.connections.map((name) => new SingleNodeStore(connections.get(name))), redlock.driftFactor)
      : new SingleNodeStore(connections.get());
    this.owner = { store: this.store, onEnd: (lock) => this.held.delete(lock), warn: (message) => this.logger.warn(message) };
  }

  /**
   * Acquires the lock on `key` (or on all of `keys` at once), waiting up to `wait`.
   * @throws LockNotAcquiredError with reason `'held'` (no wait), `'timeout'` or `'store-unavailable'`.
   * @example
   * const lock = await this.locks.acquire(['account:1', 'account:2'], { ttl: '5s', wait: '1s' });
   */
  async acquire(key: string | readonly string[], options: AcquireOptions = {}): Promise<Lock> {
    return this.take(key, resolveAcquireOptions(options, this.options.lock, false, 'options', ACQUIRE_FIELDS));
  }

  /**
   * Like `acquire`, but resolves with null when the lock is busy.
   * @throws LockNotAcquiredError with reason `'store-unavailable'` when Redis cannot be reached.
   */
  async tryAcquire(key: string | readonly string[], options: AcquireOptions = {}): Promise<Lock | null> {
    try {
      return await this.acquire(key, options);
    } catch (error) {
      if (error instanceof LockNotAcquiredError && error.reason !== 'store-unavailable') return null;
      throw error;
    }
  }

  /**
   * Runs `fn` holding the lock, renewing it while `fn` runs (unless `autoExtend: false`), and
   * always releases it. A failed release is logged, never thrown over `fn`'s own result or error.
   * @example
   * const total = await this.locks.using('nightly-report', () => this.reports.build(), { ttl: '1m' });
   */
  async using<T>(key: string | readonly string[], fn: (lock: Lock) => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    const lock = await this.take(key, resolveAcquireOptions(options, this.options.lock, true, 'options', ACQUIRE_FIELDS));
    return this.runHolding(lock, fn);
  }

  /** The lock held by the `using` callback or `@WithLock` method this code runs in, if any. */
  current(): Lock | undefined {
    return this.current$.getStore();
  }

  /** @internal Used by `@WithLock`. */
  async runHolding<T>(lock: Lock, fn: (lock: Lock) => T | Promise<T>): Promise<T> {
    try {
      return await this.current$.run(lock, () => fn(lock));
    } finally {
      await lock.release();
    }
  }

  /** @internal Used by `@WithLock`: its options with the module's defaults. */
  acquireOptions(options: AcquireOptions, where: string): ResolvedAcquireOptions {
    return resolveAcquireOptions(options, this.options.lock, true, where, [...ACQUIRE_FIELDS, 'key', 'onBusy']);
  }

  /** @internal Used by `@WithLock`: takes the lock with already-resolved options. */
  async take(key: string | readonly string[], options: ResolvedAcquireOptions): Promise<Lock> {
    const userKeys = this.userKeys(key);
    const keys = this.redisKeys(userKeys);
    const started = performance.now();
    const { minDelayMs, maxDelayMs } = this.options.lock.retry;
    for (let attempt = 0; ; attempt++) {
      if (this.shuttingDown) throw new LockNotAcquiredError(userKeys, 'store-unavailable', performance.now() - started, { cause: new Error('the app is shutting down') });
      // A new token per attempt: a late release of an earlier attempt cannot touch this one's grant.
      const token = this.tokens.next();
      let result;
      try {
        result = await this.store.acquire(keys, token, options.ttlMs);
      } catch (error) {
        throw new LockNotAcquiredError(userKeys, 'store-unavailable', performance.now() - started, { cause: error });
      }
      if (result.acquired) {
        const lock = new Lock(userKeys, result.fencingToken, result.validityMs, { keys, token, ttlMs: options.ttlMs }, this.owner, options.autoExtend);
        this.track(lock);
        return lock;
      }
      const waitedMs = performance.now() - started;
      const leftMs = options.waitMs - waitedMs;
      if (leftMs <= 0) throw new LockNotAcquiredError(userKeys, options.waitMs === 0 && !result.expired ? 'held' : 'timeout', waitedMs);
      // Full jitter, never past the wait, and never longer than the holder's remaining lease.
      const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 20), leftMs, Math.max(minDelayMs, result.heldForMs));
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.random() * ceiling)));
    }
  }

  /**
   * At shutdown, every lock still held is surrendered: its `signal` aborts (code still running
   * under it learns it no longer has it), then it is released, so other instances need not wait
   * out the lease.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    await Promise.all([...this.held].map((lock) => lock.surrender('the app is shutting down')));
  }

  /** Remembers a held lock (for shutdown); every so often forgets those whose lease ran out unreleased. */
  private track(lock: Lock): void {
    this.held.add(lock);
    if (this.held.size % 256 === 0) for (const held of this.held) void held.lost; // a lost lock removes itself
  }

  private userKeys(key: string | readonly string[]): string[] {
    const keys = typeof key === 'string' ? [key] : Array.isArray(key) ? [...new Set(key as string[])].sort() : undefined;
    if (!keys || keys.length === 0 || keys.some((part) => typeof part !== 'string' || part.length === 0)) {
      throw new InvalidOptionError('key', 'a non-empty string, or a non-empty array of them', key);
    }
    return keys;
  }

  /**
   * `<prefix>lock:{<key>}` (`%`, `{` and `}` percent-encoded), or `<prefix>lock:t:<key>` when the
   * key has a hash tag of its own (keys locked together must share one on a Cluster); each key's
   * fence is the same under `<prefix>fence:`, in the same slot. No key can name another's fence.
   */
  private redisKeys(userKeys: readonly string[]): LockKeys {
    const parts = userKeys.map((key) => (hasHashTag(key) ? `t:${key}` : `{${key.replace(/[%{}]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)}}`));
    const locks = parts.map((part) => `${this.keys.prefix}lock:${part}`);
    if (this.cluster && locks.length > 1 && locks.some((lock) => calculateSlot(lock) !== calculateSlot(locks[0]))) {
      throw new InvalidOptionError('key', 'keys locked together that share one hash tag on a Cluster, such as ["{order:1}:payment", "{order:1}:stock"]', userKeys);
    }
    return { locks, fences: parts.map((part) => `${this.keys.prefix}fence:${part}`) };
  }
}

const ACQUIRE_FIELDS = ['ttl', 'wait', 'autoExtend'];

/** Whether some class uses `@WithLock` (then the app uses locks, even without a `lock` section). */
let withLockDefined = false;

/** @internal Called by `@WithLock` when it decorates a method. */
export function noteWithLock(): void {
  withLockDefined = true;
}

/** Whether Redis would hash only part of the key: a `{` followed later by a `}` with something between. */
function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  if (open === -1) return false;
  const close = key.indexOf('}', open + 1);
  return close > open + 1;
}

/**
 * Lock tokens: 128 random bits from the operating system's CSPRNG, as hex. Drawn from a buffer
 * refilled 256 tokens at a time, since one system call per lock costs more than the lock.
 */
class TokenSource {
  private readonly pool = Buffer.alloc(16 * 256);
  private offset = this.pool.length;

  next(): string {
    if (this.offset === this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const token = this.pool.toString('hex', this.offset, this.offset + 16);
    this.offset += 16;
    return token;
  }
}
