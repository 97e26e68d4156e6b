import { toTimerMilliseconds, type Duration } from '../core/duration.js';
import { isStoreFailure } from '../core/store-failure.js';
import { lockName, LockLostError } from './lock.exception.js';
import type { LockKeys, LockStore } from './lock.store.js';

/** What every Lock of a service shares: where locks live, and whom to tell. */
export interface LockOwner {
  store: LockStore;
  /** Called once the lock is released or lost. */
  onEnd(lock: Lock): void;
  /** Called once a release freed the lock's keys in Redis (not at shutdown). */
  onReleased?(keys: LockKeys): void;
  /** Reports a release or renewal that failed for a bug (outages are logged by the store, once per connection). */
  warn(message: string): void;
}

/** One acquisition's Redis keys, token and lease. */
export interface LockLease {
  keys: LockKeys;
  token: string;
  ttlMs: number;
}

/**
 * A held lock. Its `signal` is aborted as soon as the lease is known to be lost (a renewal found
 * the key gone or taken, or the lease ran out without a renewal); `lost` is then true. Pass
 * `fencingToken` to the resource the lock protects, so it can refuse writes from a holder whose
 * lease has run out.
 *
 * @example
 * const lock = await this.locks.acquire(`invoice:${id}`, { ttl: '10s' });
 * try {
 *   await this.db.update(invoice, { fencingToken: lock.fencingToken });
 * } finally {
 *   await lock.release();
 * }
 */
export class Lock {
  /** Strictly greater than every earlier token for each of the lock's keys. */
  readonly fencingToken: number;
  private expiresAtMs: number;
  private released = false;
  private lostReason: LockLostError | undefined;
  /** Made when someone asks for `signal` (most locks are released without anyone listening). */
  private controller: AbortController | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  /** The lease renewals ask for: the lock's ttl, or what the last `extend` asked for. */
  private ttlMs: number;
  /** When the next renewal is due: a third of the lease, or half its validity if that is sooner. */
  private renewalMs: number;

  constructor(
    /** The keys as given (sorted). */
    readonly keys: readonly string[],
    fencingToken: number,
    /** Until when the lease is surely valid (ms since the epoch, this host's clock). */
    validUntilMs: number,
    private readonly lease: LockLease,
    private readonly owner: LockOwner,
    autoExtend: boolean,
  ) {
    this.fencingToken = fencingToken;
    this.expiresAtMs = validUntilMs;
    this.ttlMs = lease.ttlMs;
    this.renewalMs = renewalDelay(lease.ttlMs, validUntilMs - Date.now());
    if (autoExtend) this.scheduleRenewal();
  }

  /** The first (or only) key. */
  get key(): string {
    return this.keys[0];
  }

  /** When the lease surely runs out unless extended (ms since the epoch, by this host's clock). */
  get expiresAt(): number {
    return this.expiresAtMs;
  }

  /** Aborted when the lease is lost; its `reason` is a LockLostError. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (!this.lost && !this.released) this.watchLease();
    }
    if (this.lost) this.controller.abort(this.lostReason);
    return this.controller.signal;
  }

  /** Whether the lease was lost (it ran out, or another holder has the key). */
  get lost(): boolean {
    if (this.lostReason) return true;
    if (this.released || Date.now() < this.expiresAtMs) return false;
    this.lose('its lease ran out');
    return true;
  }

  /**
   * Renews the lease for `ttl` (default: the lock's ttl).
   * @throws LockLostError when the lock is no longer held; RedisUnavailableError when Redis cannot be reached.
   * @example
   * await lock.extend('30s'); // a long step ahead
   */
  async extend(ttl: Duration = this.ttlMs): Promise<void> {
    const ttlMs = toTimerMilliseconds(ttl, 'ttl');
    if (this.released || this.lost)
      throw new LockLostError(this.keys, this.released ? 'it was released' : 'its lease had already been lost');
    const validUntilMs = await this.owner.store.extend(this.lease.keys, this.lease.token, ttlMs);
    if (validUntilMs === undefined) {
      this.lose('another holder has it, or its key is gone');
      throw this.lostReason ?? new LockLostError(this.keys, 'it was released');
    }
    // Lost while the renewal was on its way: it does not count. Released: nothing to re-arm.
    if (this.lostReason) throw this.lostReason;
    if (this.released) return;
    this.ttlMs = ttlMs;
    this.renewalMs = renewalDelay(ttlMs, validUntilMs - Date.now());
    this.expiresAtMs = validUntilMs;
    if (this.controller) this.watchLease();
  }

  /**
   * Releases the lock (only the keys that still carry this holder's token). Never throws.
   * Resolves with whether anything was released. When Redis cannot be reached, the release is
   * tried again as soon as it is back (until the lease ends), so the lock does not stay taken for
   * the rest of its lease; any other failure is logged, and the lease runs out by itself.
   * @example
   * const lock = await this.locks.acquire('report');
   * try { await this.build(); } finally { await lock.release(); }
   */
  async release(): Promise<boolean> {
    if (this.released) return false;
    this.released = true;
    this.stopTimers();
    this.owner.onEnd(this);
    // Even when lost: a renewal may have landed after the loss, and the release checks the token.
    const released = await this.releaseKeys();
    if (released) this.owner.onReleased?.(this.lease.keys);
    return released;
  }

  /** Tells anyone listening that the lock is gone (aborting `signal`), then releases it: at shutdown. */
  async surrender(reason: string): Promise<void> {
    if (this.released || this.lostReason) return;
    this.lose(reason);
    this.released = true;
    await this.releaseKeys();
  }

  private async releaseKeys(): Promise<boolean> {
    try {
      return await this.owner.store.release(this.lease.keys, this.lease.token, this.expiresAtMs);
    } catch (error) {
      // An outage is logged once per connection by the store, which retries the release when Redis is back.
      if (!isStoreFailure(error))
        this.owner.warn(
          `Could not release lock ${lockName(this.keys)} (its lease will run out by itself): ${(error as Error)?.message ?? error}`,
        );
      return false;
    }
  }

  private scheduleRenewal(delayMs = this.renewalMs): void {
    this.renewTimer = setTimeout(() => {
      this.extend().then(
        () => !this.released && !this.lostReason && this.scheduleRenewal(),
        (error: unknown) => {
          if (this.released || this.lostReason || this.lost) return;
          // Try again; the lease marks the lock lost if it runs out first. An outage is logged by the store.
          if (!isStoreFailure(error)) this.owner.warn(`Could not renew lock ${lockName(this.keys)}: ${(error as Error)?.message ?? error}`);
          this.scheduleRenewal(Math.max(1, Math.min(this.renewalMs, Math.floor((this.expiresAtMs - Date.now()) / 2))));
        },
      );
    }, delayMs);
    this.renewTimer.unref();
  }

  /** Aborts `signal` the moment the lease runs out without a renewal. */
  private watchLease(): void {
    clearTimeout(this.leaseTimer);
    // Timers and the wall clock may disagree by a millisecond or more: re-arm until it is past.
    this.leaseTimer = setTimeout(() => !this.lost && !this.released && this.watchLease(), Math.max(1, this.expiresAtMs - Date.now()));
    this.leaseTimer.unref();
  }

  private lose(reason: string): void {
    if (this.lostReason || this.released) return;
    this.lostReason = new LockLostError(this.keys, reason);
    this.stopTimers();
    this.controller?.abort(this.lostReason);
    this.owner.onEnd(this);
  }

  private stopTimers(): void {
    clearTimeout(this.leaseTimer);
    clearTimeout(this.renewTimer);
  }
}

/** The delay before renewing: a third of the lease, or half of what is surely left if that is sooner. */
function renewalDelay(ttlMs: number, validityMs: number): number {
  return Math.max(1, Math.floor(Math.min(ttlMs / 3, validityMs / 2)));
}
