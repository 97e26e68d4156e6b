import { randomUUID } from 'node:crypto';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { LockNotAcquiredError } from './lock.exception.js';
import type { Lock, LockOwner } from './lock.js';
import type { AcquireOptions } from './lock.options.js';
import { resolveAcquireOptions, type ResolvedAcquireOptions, type ResolvedLockOptions } from './lock.options-validator.js';
import type { ReleaseLog } from './lock.release-retries.js';
import { LOCK_SCRIPTS, SingleNodeStore, type LeaseScripts, type LockKeys } from './lock.store.js';

const script = (name: string) =>
  RedisScript.fromFile(new URL(`./lock-read-write-${name}.lua`, import.meta.url), new URL('./lock-read-write-clock.lua', import.meta.url));

/** A reader's lease: a member of the readers' sorted set, scored by its end on Redis's clock. */
const READ_SCRIPTS: LeaseScripts = { acquire: script('read'), extend: script('extend'), release: script('release'), exclusive: false };
/** A writer's lease is a lock's (`SET PX` with its token), taken only when no reader holds one. */
const WRITE_SCRIPTS: LeaseScripts = { ...LOCK_SCRIPTS, acquire: script('write') };

/** How long a waiting writer's intent lasts once renewed, in pauses between attempts (`lock.retry.maxDelay`). */
const INTENT_PAUSES = 3;
/** The shortest intent: long enough for an attempt that takes a while to reach Redis. */
const MIN_INTENT_MS = 1_000;

/**
 * Where read-write locks live: on the main connection (also when locks use Redlock), sharing the
 * locks' outage log, so an outage is logged once for both. One store per side, each with its own
 * scripts and its own retried releases.
 */
export class ReadWriteStores {
  readonly read: LockOwner;
  readonly write: LockOwner;
  /** How long a waiting writer's intent lasts after its last attempt. */
  readonly intentMs: number;

  constructor(
    private readonly client: RedisClient,
    private readonly outage: OutageLog,
    log: ReleaseLog,
    owner: LockOwner,
    settings: ResolvedLockOptions,
  ) {
    this.read = { ...owner, store: new SingleNodeStore(client, outage, log, READ_SCRIPTS) };
    this.write = { ...owner, store: new SingleNodeStore(client, outage, log, WRITE_SCRIPTS) };
    this.intentMs = Math.max(MIN_INTENT_MS, INTENT_PAUSES * settings.retry.maxDelayMs);
  }

  /** Removes a writer's intent once it gave up waiting. Best effort: an intent left behind ends by itself. */
  async withdraw(intents: string, writer: string): Promise<void> {
    await this.outage.guard(this.client.zrem(intents, writer)).catch(() => undefined);
  }
}

/** What the sides of a read-write lock use of `LockService` (its internal methods). */
export interface LockHost {
  takeWith(names: string[], keys: LockKeys, options: ResolvedAcquireOptions, owner: LockOwner): Promise<Lock>;
  runHolding<T>(lock: Lock, fn: (lock: Lock) => T | Promise<T>): Promise<T>;
}

/** The Redis keys of a read-write lock, all in the hash tag of its key. */
export interface ReadWriteKeys {
  readers: string;
  writer: string;
  intents: string;
  fence: string;
}

/**
 * A read-write lock on one key: any number of readers at once, or one writer. Both sides hand
 * out `Lock`s, with leases (auto-extended like locks), a `signal` aborted on loss, and fencing
 * tokens from one counter per key, so every grant, read or write, gets a token greater than every
 * earlier grant of either side.
 *
 * Writer preference: a writer that is refused and waits records an intent (renewed by the attempt
 * that finds less than two thirds of it left); while an intent has not ended, no new reader is
 * granted, so a stream of readers cannot starve a writer: it gets in once the readers already in
 * have left. An intent ends when its writer gets in or gives up, or on its own within a few retry
 * pauses of the writer's last attempt (when the writer crashed), so readers are never blocked for
 * long by a writer that is gone.
 *
 * Runs on the main connection only, also when locks use Redlock (no quorum).
 *
 * @example
 * const config = this.locks.readWrite(`config:${tenantId}`);
 * const current = await config.read.using(() => this.store.load(tenantId), { wait: '2s' });
 * await config.write.using((lock) => this.store.save(tenantId, next, lock.fencingToken), { wait: '5s' });
 */
export class ReadWriteLock {
  /** Shared holds: many readers at once, none while a writer holds or waits. */
  readonly read: ReadWriteSide;
  /** Exclusive holds: one writer, while no reader holds. */
  readonly write: ReadWriteSide;

  constructor(
    /** The key, as given. */
    readonly key: string,
    keys: ReadWriteKeys,
    host: LockHost,
    stores: ReadWriteStores,
    settings: ResolvedLockOptions,
  ) {
    const { readers, writer, intents, fence } = keys;
    const names = [key];
    this.read = new ReadWriteSide(host, settings, (options) =>
      host.takeWith(names, { names, locks: [readers], shared: [writer, intents], fences: [fence] }, options, stores.read),
    );
    this.write = new ReadWriteSide(host, settings, async (options) => {
      // One id for the whole wait, so each attempt renews the same intent and the grant removes it.
      const id = randomUUID();
      const waits = options.waitMs > 0;
      const lease: LockKeys = {
        names,
        locks: [writer],
        shared: [readers, intents],
        fences: [fence],
        acquireArgs: [id, waits ? stores.intentMs : 0],
      };
      try {
        return await host.takeWith(names, lease, options, stores.write);
      } catch (error) {
        if (waits) await stores.withdraw(intents, id);
        throw error;
      }
    });
  }
}

/** One side of a read-write lock: `acquire`, `tryAcquire` and `using`, as on `LockService`. */
export class ReadWriteSide {
  constructor(
    private readonly host: LockHost,
    private readonly settings: ResolvedLockOptions,
    /** @internal Takes this side's lease with resolved options (counted in the lock metrics, in a `lock.acquire` span). */
    readonly take: (options: ResolvedAcquireOptions) => Promise<Lock>,
  ) {}

  /**
   * Acquires this side, waiting up to `wait`; the caller releases. Renewed only with `autoExtend: true`.
   * @throws LockNotAcquiredError with reason `'held'` (no wait), `'timeout'` or `'store-unavailable'`;
   * InvalidOptionError naming the option at fault.
   * @example
   * const lock = await this.locks.readWrite('config').write.acquire({ ttl: '10s', wait: '5s' });
   * try { await this.save(next, lock.fencingToken); } finally { await lock.release(); }
   */
  async acquire(options: AcquireOptions = {}): Promise<Lock> {
    return this.take(this.resolve(options, false));
  }

  /**
   * Like `acquire`, but resolves with null when the other side (or, for a writer, anyone) holds it.
   * @throws LockNotAcquiredError with reason `'store-unavailable'` when Redis cannot be reached.
   * @example
   * const lock = await this.locks.readWrite('config').read.tryAcquire();
   * if (!lock) return this.cachedCopy; // a writer holds it, or waits for it
   */
  async tryAcquire(options: AcquireOptions = {}): Promise<Lock | null> {
    try {
      return await this.acquire(options);
    } catch (error) {
      if (error instanceof LockNotAcquiredError && error.reason !== 'store-unavailable') return null;
      throw error;
    }
  }

  /**
   * Runs `fn` holding this side, renewing it while `fn` runs (unless `autoExtend: false`), and
   * always releases it. Inside, `LockService.current()` is its lock.
   * @example
   * const config = await this.locks.readWrite('config').read.using(() => this.load(), { wait: '2s' });
   */
  async using<T>(fn: (lock: Lock) => T | Promise<T>, options: AcquireOptions = {}): Promise<T> {
    const lock = await this.take(this.resolve(options, true));
    return this.host.runHolding(lock, fn);
  }

  private resolve(options: AcquireOptions, autoExtendByDefault: boolean): ResolvedAcquireOptions {
    return resolveAcquireOptions(options, this.settings, autoExtendByDefault, 'options', ['ttl', 'wait', 'autoExtend']);
  }
}
