import { InvalidOptionError } from '../core/errors.js';
import { keyEscaper } from '../core/keys.js';
import { RedisScript } from '../core/redis-script.js';
import { LockNotAcquiredError } from './lock.exception.js';
import type { Lock } from './lock.js';
import type { AcquireOptions } from './lock.options.js';
import { resolveAcquireOptions, type ResolvedAcquireOptions, type ResolvedLockOptions } from './lock.options-validator.js';
import { LeasesOnOneNode, type LockKeys, type LockStore } from './lock.store.js';

const leases = new URL('./lock-semaphore-leases.lua', import.meta.url);
const acquireScript = RedisScript.fromFile(new URL('./lock-semaphore-acquire.lua', import.meta.url), leases);
const extendScript = RedisScript.fromFile(new URL('./lock-semaphore-extend.lua', import.meta.url), leases);
const releaseScript = RedisScript.fromFile(new URL('./lock-semaphore-release.lua', import.meta.url), leases);
const heldScript = RedisScript.fromFile(new URL('./lock-semaphore-held.lua', import.meta.url), leases);

/**
 * Options of one acquisition of a semaphore's permits; unset ones come from the module's `lock`
 * options.
 *
 * @example
 * const permits = await exports.acquire({ permits: 2, ttl: '1m', wait: '10s', autoExtend: true });
 */
export interface SemaphoreAcquireOptions extends AcquireOptions {
  /** How many permits to take at once, all or none (at most the semaphore's). @default 1 */
  permits?: number;
}

/** @internal What a semaphore needs of the lock service that made it. */
export interface SemaphoreContext {
  store: SemaphoreStore;
  settings: ResolvedLockOptions;
  prefix: string;
  /** Takes a lease from `store`, waiting as locks do (counted in the lock metrics, surrendered at shutdown). */
  take(names: string[], keys: LockKeys, store: LockStore, options: ResolvedAcquireOptions): Promise<Lock>;
  /** Runs `fn` holding `lock` (as `LockService.current()`), then releases it. */
  runHolding<T>(lock: Lock, fn: (lock: Lock) => T | Promise<T>): Promise<T>;
}

/**
 * A counting semaphore shared by every instance: at most `permits` permits are held at once.
 * Each acquisition is a `Lock` of its own, with its own token and lease (on Redis's clock), a
 * `fencingToken` greater than every earlier holder's, auto-extension, and a `signal` aborted when
 * its lease is lost. A holder that crashes gives its permits back when its lease ends, never
 * sooner. Made by `LockService.semaphore(name, permits)`.
 *
 * The number of permits is the caller's, checked at each acquisition: a semaphore made again with
 * fewer permits lets holders above the new number keep theirs, and hands out none until the
 * permits held are under it.
 *
 * @example
 * const exports = this.locks.semaphore('report-exports', 3);
 * await exports.using(async (permit) => this.build(permit.signal), { wait: '10s', ttl: '1m' });
 */
export class Semaphore {
  private readonly keys: LockKeys;

  constructor(
    /** The semaphore's name, shared by every instance. */
    readonly name: string,
    /** How many permits may be held at once. */
    readonly permits: number,
    private readonly context: SemaphoreContext,
  ) {
    const base = `${context.prefix}sem:{${escapeName(name)}}`;
    this.keys = { names: [name], locks: [base, `${base}:permits`, `${base}:held`], fences: [`${base}:fence`] };
  }

  /**
   * Takes permits (one by default), waiting up to `wait`. The permits are a `Lock`: release them
   * with `release()`. Not renewed unless `autoExtend: true`.
   * @throws LockNotAcquiredError with reason `'held'` (no wait and not enough free), `'timeout'`
   * or `'store-unavailable'` (Redis cannot be reached); InvalidOptionError naming `options.permits`
   * when it is not a whole number from 1 to the semaphore's permits.
   * @example
   * const permit = await this.locks.semaphore('exports', 3).acquire({ wait: '5s' });
   * try { await this.export(); } finally { await permit.release(); }
   */
  async acquire(options: SemaphoreAcquireOptions = {}): Promise<Lock> {
    return this.take(options, false, 'options');
  }

  /**
   * Like `acquire`, but resolves with null when not enough permits are free (within `wait`).
   * @throws LockNotAcquiredError with reason `'store-unavailable'` when Redis cannot be reached; other errors as `acquire`.
   * @example
   * const permit = await this.locks.semaphore('exports', 3).tryAcquire();
   * if (!permit) throw new ServiceUnavailableException('Too many exports running; try again later');
   */
  async tryAcquire(options: SemaphoreAcquireOptions = {}): Promise<Lock | null> {
    return this.take(options, false, 'options').catch((error: unknown) => {
      if (error instanceof LockNotAcquiredError && error.reason !== 'store-unavailable') return null;
      throw error;
    });
  }

  /**
   * Runs `fn` holding permits, renewing their lease while it runs (unless `autoExtend: false`),
   * and always gives them back. Inside, `LockService.current()` is the permits' `Lock`.
   * @example
   * const csv = await this.locks.semaphore('exports', 3).using(() => this.export(), { wait: '10s' });
   */
  async using<T>(fn: (permit: Lock) => T | Promise<T>, options: SemaphoreAcquireOptions = {}): Promise<T> {
    return this.context.runHolding(await this.take(options, true, 'options'), fn);
  }

  /**
   * How many permits are free now (0 when holders above a lowered number still hold theirs).
   * Ended leases count as free. A snapshot: another instance may take them the next moment.
   * @throws RedisUnavailableError (503) when Redis cannot be reached.
   * @example
   * const free = await this.locks.semaphore('exports', 3).available(); // 0 to 3
   */
  async available(): Promise<number> {
    return Math.max(0, this.permits - (await this.context.store.held(this.keys)));
  }

  /** @internal Used by `@WithSemaphore`: takes permits with options checked there. */
  async take(options: SemaphoreAcquireOptions, autoExtendByDefault: boolean, where: string): Promise<Lock> {
    const resolved = resolveAcquireOptions(options, this.context.settings, autoExtendByDefault, where, ACQUIRE_FIELDS);
    const permits = options.permits ?? 1;
    if (!Number.isSafeInteger(permits) || permits < 1 || permits > this.permits)
      throw new InvalidOptionError(`${where}.permits`, `a whole number from 1 to ${this.permits} (the semaphore's permits)`, permits);
    return this.context.take([this.name], this.keys, this.context.store.asking(permits, this.permits), resolved);
  }
}

const ACQUIRE_FIELDS = ['ttl', 'wait', 'autoExtend', 'permits'];

/** A semaphore's name inside its hash tag: braces encoded too, so it cannot leave the tag. */
const escapeName = keyEscaper('{}');

/**
 * Semaphores on one connection. A semaphore's keys share one hash tag (one slot on a Cluster):
 * `<prefix>sem:{<name>}`, the holders by the end of their lease on Redis's clock, `:permits`,
 * the count of each holder of several permits, `:held`, the permits held in all, and `:fence`,
 * the last fencing token (never expires).
 */
export class SemaphoreStore extends LeasesOnOneNode {
  /** A LockStore for acquisitions of `permits` permits of a semaphore of `limit`. */
  asking(permits: number, limit: number): LockStore {
    return {
      // Asking for every permit, as a semaphore of one does: one holder at a time.
      exclusive: permits === limit,
      acquire: (keys, token, ttlMs) =>
        this.grant(keys, token, ttlMs, () =>
          acquireScript.run<[number, number]>(this.client, [...keys.locks, ...keys.fences], [token, permits, limit, ttlMs]),
        ),
      extend: (keys, token, ttlMs) => this.extend(keys, token, ttlMs),
      release: (keys, token, untilMs) => this.release(keys, token, untilMs),
    };
  }

  /** Until when the permits are surely held after renewing (see `AcquireResult`), or undefined when they are no longer the caller's. */
  extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined> {
    return this.renew(ttlMs, () => extendScript.run<number>(this.client, keys.locks, [token, ttlMs]));
  }

  /** How many permits are held (ended leases dropped). */
  held(keys: LockKeys): Promise<number> {
    return this.outage.guard(heldScript.run<number>(this.client, keys.locks, []));
  }

  protected async releaseNow(keys: LockKeys, token: string): Promise<boolean> {
    return (await this.outage.guard(releaseScript.run<number>(this.client, keys.locks, [token]))) === 1;
  }
}
