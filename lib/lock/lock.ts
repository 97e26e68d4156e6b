import { LockLostError } from './lock.exception.js';
import type { LockKeys, LockStore } from './lock.store.js';

/** What a Lock needs from the service that made it. */
export interface LockContext {
  store: LockStore;
  keys: LockKeys;
  token: string;
  ttlMs: number;
  /** Called once the lock is released or lost. */
  onEnd(lock: Lock): void;
  /** Reports a failed release or renewal (never thrown at the caller of the protected code). */
  warn(message: string): void;
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
  private readonly controller = new AbortController();
  private expiresAtMs: number;
  private released = false;
  private leaseTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;

  constructor(
    /** The keys as given (sorted). */
    readonly keys: readonly string[],
    fencingToken: number,
    validityMs: number,
    private readonly context: LockContext,
    autoExtend: boolean,
  ) {
    this.fencingToken = fencingToken;
    this.expiresAtMs = Date.now() + validityMs;
    this.watchLease(validityMs);
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
    return this.controller.signal;
  }

  get lost(): boolean {
    return this.controller.signal.aborted;
  }

  /**
   * Renews the lease for `ttlMs` (default: the lock's ttl).
   * @throws LockLostError when the lock is no longer held.
   */
  async extend(ttlMs = this.context.ttlMs): Promise<void> {
    if (this.released || this.lost) throw new LockLostError(this.keys, this.released ? 'it was released' : 'its lease had already been lost');
    const validityMs = await this.context.store.extend(this.context.keys, this.context.token, ttlMs);
    if (validityMs === undefined) {
      this.lose('another holder has it, or its key is gone');
      throw this.signal.reason as LockLostError;
    }
    // Released or lost while the renewal was on its way: no timer to re-arm.
    if (this.released || this.lost) return;
    this.expiresAtMs = Date.now() + validityMs;
    this.watchLease(validityMs);
  }

  /**
   * Releases the lock (only the keys that still carry this holder's token). Never throws: a
   * failure is logged, and the lease runs out by itself. Resolves with whether anything was released.
   */
  async release(): Promise<boolean> {
    if (this.released) return false;
    this.released = true;
    this.stopTimers();
    this.context.onEnd(this);
    if (this.lost) return false;
    try {
      return await this.context.store.release(this.context.keys, this.context.token);
    } catch (error) {
      this.context.warn(`Could not release lock ${this.describe()} (its lease will run out by itself): ${(error as Error)?.message ?? error}`);
      return false;
    }
  }

  private scheduleRenewal(): void {
    this.renewTimer = setTimeout(() => {
      this.extend().then(
        () => !this.released && this.scheduleRenewal(),
        (error: unknown) => {
          if (this.released || this.lost) return;
          // Redis unreachable: try again; the lease timer marks the lock lost if it runs out first.
          this.context.warn(`Could not renew lock ${this.describe()}: ${(error as Error)?.message ?? error}`);
          this.scheduleRenewal();
        },
      );
    }, Math.max(1, Math.floor(this.context.ttlMs / 3)));
    this.renewTimer.unref();
  }

  /** Marks the lock lost when its lease runs out without a renewal. */
  private watchLease(validityMs: number): void {
    clearTimeout(this.leaseTimer);
    this.leaseTimer = setTimeout(() => this.lose('its lease ran out'), Math.max(0, validityMs));
    this.leaseTimer.unref();
  }

  private lose(reason: string): void {
    if (this.lost || this.released) return;
    this.stopTimers();
    this.controller.abort(new LockLostError(this.keys, reason));
    this.context.onEnd(this);
  }

  private stopTimers(): void {
    clearTimeout(this.leaseTimer);
    clearTimeout(this.renewTimer);
  }

  private describe(): string {
    return this.keys.map((key) => `"${key}"`).join(', ');
  }
}
