import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { InvalidOptionError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { RedisMetrics } from '../core/metrics.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { DEFAULT_CONNECTION } from '../core/core.options.js';
import { RandomTokens } from '../core/random-tokens.js';
import { ScopedContext } from '../core/scoped-context.js';
import { RedisTracing } from '../core/tracing.js';
import { toPositiveInteger, toTextArgument } from '../core/validation.js';
import { PubSubService } from '../pubsub/pubsub.service.js';
import { Lock, type LockOwner } from './lock.js';
import { LockNotAcquiredError } from './lock.exception.js';
import { lockRedisKeys, lockUserKeys, readWriteLockKeys } from './lock.keys.js';
import { FairLocks, type FairGrant } from './lock.fair.js';
import { LockAttempts } from './lock.attempts.js';
import { ACQUIRE_SPAN, LockMetrics } from './lock.metrics.js';
import { LOCK_OPTIONS, type AcquireOptions } from './lock.options.js';
import { resolveAcquireOptions, type ResolvedAcquireOptions, type ResolvedLockOptions } from './lock.options-validator.js';
import { ReadWriteLock, ReadWriteStores } from './lock.read-write.js';
import { Semaphore, SemaphoreStore, type SemaphoreContext } from './lock.semaphore.js';
import type { LockKeys, LockStore } from './lock.store.js';
import { wireLocks } from './lock.wiring.js';

/**
 * Distributed locks: on the main connection, or with Redlock on a majority of independent servers
 * (`lock.redlock`). Release and renewal only ever touch the caller's own lock (token-checked in
 * Lua); every acquisition gets a fencing token; Redis down means `LockNotAcquiredError` with
 * reason `'store-unavailable'`, never running unlocked, and a release that failed meanwhile is
 * tried again when Redis is back. Any other error of Redis (a WRONGTYPE) is thrown as it is.
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
  private readonly current$ = new ScopedContext<Lock>();
  private readonly held = new Set<Lock>();
  private readonly cluster: boolean;
  /** Lock tokens: 128 random bits each, as hex. */
  private readonly tokens = new RandomTokens(16, 'hex');
  private readonly owner: LockOwner;
  private readonly metrics: LockMetrics;
  /** Made at the first `readWrite`: the stores of read-write locks, on the main connection. */
  private readonly readWriteStores: () => ReadWriteStores;
  /** What semaphores share: their store on the main connection, with Redlock too. */
  private readonly semaphores: SemaphoreContext;
  /** Fair locks, on the main connection (none with Redlock), and the owner of their locks. */
  private readonly fair: { locks: FairLocks; owner: LockOwner } | undefined;
  private readonly attempts: LockAttempts;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(LOCK_OPTIONS) private readonly settings: ResolvedLockOptions,
    metrics: RedisMetrics,
    private readonly tracing: RedisTracing,
    pubsub: PubSubService,
  ) {
    this.metrics = new LockMetrics(metrics, () => this.held.size);
    this.attempts = new LockAttempts(settings.retry, this.tokens);
    const { store, cluster, mainOutage, releaseLog } = wireLocks(connections, settings, this.logger);
    this.store = store;
    this.cluster = cluster;
    const ownerOf = (store: LockStore): LockOwner => ({
      store,
      onEnd: (lock) => (this.held.delete(lock), this.metrics.released(lock)),
      warn: (message) => this.logger.warn(message),
    });
    this.owner = { ...ownerOf(this.store), onReleased: (keys) => this.attempts.released(keys.fences) };
    if (!settings.redlock) {
      const fairLocks = new FairLocks(
        connections.get(),
        mainOutage,
        releaseLog(DEFAULT_CONNECTION),
        keys.prefix,
        pubsub,
        settings.fair,
        metrics,
      );
      this.fair = { locks: fairLocks, owner: ownerOf(fairLocks.store) };
    }
    this.semaphores = {
      store: new SemaphoreStore(connections.get(), mainOutage, releaseLog(DEFAULT_CONNECTION)),
      settings,
      prefix: keys.prefix,
      take: (names, semaphoreKeys, store, options) =>
        this.takeWith(names, semaphoreKeys, options, { ...this.owner, store }, 'semaphore.acquire'),
      runHolding: (lock, fn) => this.runHolding(lock, fn),
    };
    // Read-write locks live on the main connection, also with Redlock (they have no quorum).
    let readWrite: ReadWriteStores | undefined;
    this.readWriteStores = () =>
      (readWrite ??= new ReadWriteStores(connections.get(), mainOutage, releaseLog(DEFAULT_CONNECTION), this.owner, settings));
  }

  /**
   * Acquires the lock on `key` (or on all of `keys` at once), waiting up to `wait`.
   * @throws LockNotAcquiredError with reason `'held'` (no wait), `'timeout'` or `'store-unavailable'`
   * (Redis cannot be reached); InvalidOptionError naming `key` for an empty key or one that is not
   * well-formed Unicode; an error of Redis that is not an outage (a WRONGTYPE) as it is.
   * @example
   * const lock = await this.locks.acquire(['account:1', 'account:2'], { ttl: '5s', wait: '1s' });
   */
  async acquire(key: string | readonly string[], options: AcquireOptions = {}): Promise<Lock> {
    return this.take(key, resolveAcquireOptions(options, this.settings, false, 'options', ACQUIRE_FIELDS));
  }

  /**
   * Like `acquire`, but resolves with null when the lock is busy.
   * @throws LockNotAcquiredError with reason `'store-unavailable'` when Redis cannot be reached; other errors as `acquire`.
   * @example
   * const lock = await this.locks.tryAcquire(`import:${tenantId}`);
   * if (!lock) return; // another instance is importing
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
    const lock = await this.take(key, resolveAcquireOptions(options, this.settings, true, 'options', ACQUIRE_FIELDS));
    return this.runHolding(lock, fn);
  }

  /** The lock held by the `using` callback or `@WithLock` method this code runs in, if any. */
  current(): Lock | undefined {
    return this.current$.get();
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
    return resolveAcquireOptions(options, this.settings, true, where, [...ACQUIRE_FIELDS, 'key', 'onBusy', 'mode']);
  }

  /**
   * The semaphore `name`, of `permits` permits, shared by every instance (see `Semaphore`). It
   * runs on the main connection, also when locks use Redlock. Cheap to make: make it again with
   * another number of permits to change it (holders above a lower number keep theirs).
   * @throws InvalidOptionError naming `name` (empty, not a string) or `permits` (not a positive
   * integer); MalformedTextError naming `name` when it is not well-formed Unicode.
   * @example
   * const exports = this.locks.semaphore('report-exports', 3);
   * const csv = await exports.using(() => this.buildCsv(), { wait: '10s', ttl: '1m' });
   */
  semaphore(name: string, permits: number): Semaphore {
    return new Semaphore(toTextArgument('name', name), toPositiveInteger('permits', permits), this.semaphores);
  }

  /**
   * A read-write lock on `key` (see `ReadWriteLock`): many readers at once or one writer, with
   * writer preference. On the main connection, also when locks use Redlock; not the same lock as
   * `acquire(key)`.
   * @throws InvalidOptionError naming `key` for a key that is not a non-empty string of well-formed Unicode.
   * @example
   * const config = this.locks.readWrite(`config:${tenantId}`);
   * const current = await config.read.using(() => this.load(tenantId), { wait: '2s' });
   */
  readWrite(key: string): ReadWriteLock {
    if (typeof key !== 'string') throw new InvalidOptionError('key', 'a non-empty string', key);
    const [name] = lockUserKeys(key);
    return new ReadWriteLock(name, readWriteLockKeys(this.keys.prefix, name), this, this.readWriteStores(), this.settings);
  }

  /** @internal Used by `@WithLock`: takes the lock with already-resolved options (counted in the metrics, in a `lock.acquire` span). */
  async take(key: string | readonly string[], options: ResolvedAcquireOptions): Promise<Lock> {
    const userKeys = lockUserKeys(key);
    return this.takeWith(userKeys, lockRedisKeys(this.keys.prefix, this.cluster, userKeys), options, this.owner);
  }

  /** @internal Used by read-write locks and semaphores: takes a lease of `owner`'s store on `keys`, as `take` does, in a `spanName` span. */
  async takeWith(
    userKeys: string[],
    keys: LockKeys,
    options: ResolvedAcquireOptions,
    owner: LockOwner,
    spanName = 'lock.acquire',
  ): Promise<Lock> {
    const started = performance.now();
    try {
      const acquisition = () =>
        options.fair
          ? this.waitInLine(userKeys, keys, options, started)
          : this.attempts
              .untilGranted(userKeys, keys, options, owner.store, started)
              .then((grant) => this.hold(userKeys, keys, grant, options, owner));
      const lock = await this.tracing.span(spanName, acquisition, ACQUIRE_SPAN);
      this.metrics.granted(lock, started);
      return lock;
    } catch (error) {
      if (error instanceof LockNotAcquiredError) this.metrics.ended(error.reason, started);
      throw error;
    }
  }

  /** A fair lock: waits in line (see FairLocks), on the main connection. */
  private async waitInLine(userKeys: string[], keys: LockKeys, options: ResolvedAcquireOptions, started: number): Promise<Lock> {
    if (!this.fair)
      throw new InvalidOptionError(
        'options.fair',
        'false, or no lock.redlock: fair locks queue on the main connection, not on a Redlock quorum',
        options.fair,
      );
    const grant = await this.fair.locks.acquire(keys, options, started, () => this.tokens.next());
    return this.hold(userKeys, keys, grant, options, this.fair.owner);
  }

  /** Hands out a granted lock (renewed by itself if asked) and remembers it for shutdown. */
  private hold(userKeys: string[], keys: LockKeys, grant: FairGrant, options: ResolvedAcquireOptions, owner: LockOwner): Lock {
    const { token, fencingToken, validUntilMs } = grant;
    const lock = new Lock(userKeys, fencingToken, validUntilMs, { keys, token, ttlMs: options.ttlMs }, owner, options.autoExtend);
    this.track(lock);
    return lock;
  }

  /**
   * At shutdown, every lock still held is surrendered: its `signal` aborts (code still running
   * under it learns it no longer has it), then it is released, so other instances need not wait
   * out the lease; acquisitions still waiting fail at once with `'store-unavailable'`.
   */
  async beforeApplicationShutdown(): Promise<void> {
    // Waiters pausing between attempts give up now, not when their pause ends.
    this.attempts.stop();
    await Promise.all([this.fair?.locks.stop(), ...[...this.held].map((lock) => lock.surrender('the app is shutting down'))]);
  }

  /** Remembers a held lock (for shutdown); every so often forgets those whose lease ran out unreleased. */
  private track(lock: Lock): void {
    this.held.add(lock);
    if (this.held.size % 256 === 0) for (const held of this.held) void held.lost; // a lost lock removes itself
  }
}

const ACQUIRE_FIELDS = ['ttl', 'wait', 'autoExtend', 'fair'];
