import { CommandInFlightLostError } from '../core/cluster-delivery.js';
import type { OutageLog } from '../core/outage-log.js';
import { RedisScript, type ScriptArgument } from '../core/redis-script.js';
import type { RedisClient } from '../core/redis-client.js';
import { isStoreFailure, outageOf } from '../core/store-failure.js';
import { ReleaseRetries, type ReleaseLog } from './lock.release-retries.js';

/** The scripts of one kind of lease: a lock's, or those of a primitive built on the same leases (a read-write lock's sides). */
export interface LeaseScripts {
  /** KEYS: the lock keys, the shared keys, the fences; ARGV: the token, the lease in ms, the acquisition's own arguments. Returns { fencing token or 0, how long it stays held }. */
  acquire: RedisScript;
  /** KEYS: the lock keys; ARGV: the token, the lease in ms. Returns 1 when renewed. */
  extend: RedisScript;
  /** KEYS: the lock keys; ARGV: the token. Returns how many were released. */
  release: RedisScript;
  /** Whether a lease excludes every other (see `LockStore.exclusive`). */
  exclusive: boolean;
}

/** The scripts of locks: `SET NX PX` with a fencing token, token-checked renewal and release. */
export const LOCK_SCRIPTS: LeaseScripts = {
  acquire: RedisScript.fromFile(new URL('./lock-acquire.lua', import.meta.url)),
  extend: RedisScript.fromFile(new URL('./lock-extend.lua', import.meta.url)),
  release: RedisScript.fromFile(new URL('./lock-release.lua', import.meta.url)),
  exclusive: true,
};
const fenceScript = RedisScript.fromFile(new URL('./lock-fence.lua', import.meta.url));

/** The Redis keys of one lock: its keys and their fence keys (same hash tag each). */
export interface LockKeys {
  /** The keys as the caller gave them (sorted), for logs. */
  names: readonly string[];
  locks: readonly string[];
  fences: readonly string[];
  /** Keys the acquisition reads besides its own, in the same hash tag: a read-write lock's other side and its waiting writers. */
  shared?: readonly string[];
  /** Arguments of the acquisition after the token and the lease: a waiting writer's id and the lease of its intent. */
  acquireArgs?: readonly ScriptArgument[];
}

/**
 * What an acquisition attempt got: the lock (with its fencing token and until when it is surely
 * valid: ms since the epoch by this host's clock, the attempt's start plus the lease, as Redis's
 * lease started after it), or how long its holder still has it; `expired` when it was granted too
 * late to be of use.
 */
export type AcquireResult =
  { acquired: true; fencingToken: number; validUntilMs: number } | { acquired: false; heldForMs: number; expired?: true };

/**
 * Where locks live: one server or Cluster, or a Redlock quorum of independent servers. An outage
 * fails a call with a RedisUnavailableError (logged once per connection); any other error (a
 * WRONGTYPE, a script error) is a bug, thrown as it is.
 */
export interface LockStore {
  /**
   * Whether what it grants has one holder at a time (a lock, a read-write lock's write side, all
   * of a semaphore's permits): this instance's waiters for the same keys then wait in line, and
   * only the first of them tries (see `LocalWaiters`).
   */
  readonly exclusive: boolean;
  acquire(keys: LockKeys, token: string, ttlMs: number): Promise<AcquireResult>;
  /** Until when the lock is surely valid after renewing (as in {@link AcquireResult}), or undefined when it is no longer the caller's. */
  extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined>;
  /** Whether anything was released. One that failed for an outage is tried again once Redis is back, until `untilMs` (the lease's end). */
  release(keys: LockKeys, token: string, untilMs: number): Promise<boolean>;
}

/**
 * Leases on one connection (a server, a Sentinel-managed master, or a Cluster), whatever their
 * scripts (locks, read-write locks, fair locks, semaphores): an outage is logged once, an
 * acquisition that may have run without its reply arriving is given back, a grant whose reply came
 * too late is released, and a release that failed for an outage is tried again once Redis is back.
 */
export abstract class LeasesOnOneNode {
  private readonly retries: ReleaseRetries;

  constructor(
    protected readonly client: RedisClient,
    /** Logs this connection's outages, once each. */
    protected readonly outage: OutageLog,
    /** Logs the retried releases it gives up (for a bug, or too many waiting). */
    log: ReleaseLog,
  ) {
    this.retries = new ReleaseRetries(client, (keys, token) => this.releaseNow(keys, token), log);
  }

  /** Whether anything was released. One that failed for an outage is tried again once Redis is back, until `untilMs` (the lease's end). */
  async release(keys: LockKeys, token: string, untilMs: number): Promise<boolean> {
    try {
      return await this.releaseNow(keys, token);
    } catch (error) {
      if (isStoreFailure(error)) this.retries.add(keys, token, untilMs);
      throw error;
    }
  }

  /** Releases what `token` holds, at once (no retry); what the retried releases send too. */
  protected abstract releaseNow(keys: LockKeys, token: string): Promise<boolean>;

  /**
   * Runs an acquisition script (`run`, answering `[fencing token or 0, pttl of a holder]`) and
   * gives back a grant that may have run unanswered, or whose reply came after its lease.
   */
  protected async grant(keys: LockKeys, token: string, ttlMs: number, run: () => Promise<[number, number]>): Promise<AcquireResult> {
    const started = performance.now();
    const leaseEndMs = Date.now() + ttlMs;
    const attempt = run().catch((error: unknown) => {
      // Given back with the other retried releases (bounded), not at once to a Redis that just failed.
      if (mayHaveRun(error)) this.retries.add(keys, token, leaseEndMs);
      throw error;
    });
    const [fencingToken, heldForMs] = await this.outage.guard(attempt);
    if (fencingToken === 0) return { acquired: false, heldForMs };
    // Until the end of the lease as it started here: a grant seen later (a slow reply, a busy event loop) is not valid longer.
    if (performance.now() - started < ttlMs) return { acquired: true, fencingToken, validUntilMs: leaseEndMs };
    // The reply came after the lease: never hand out a lock that may already be someone else's.
    await this.release(keys, token, leaseEndMs).catch(() => undefined);
    return { acquired: false, heldForMs: 0, expired: true };
  }

  /** Runs a renewal script for a lease of `ttlMs` (1: renewed); until when it is valid after it, or undefined when the lease is no longer the caller's. */
  protected async renew(ttlMs: number, run: () => Promise<number>): Promise<number | undefined> {
    const leaseEndMs = Date.now() + ttlMs;
    const renewed = await this.outage.guard(run());
    return renewed === 1 ? leaseEndMs : undefined;
  }
}

/** Locks on one connection (a server, a Sentinel-managed master, or a Cluster); `scripts` say which kind of lease. */
export class SingleNodeStore extends LeasesOnOneNode implements LockStore {
  constructor(
    client: RedisClient,
    outage: OutageLog,
    log: ReleaseLog,
    private readonly scripts: LeaseScripts = LOCK_SCRIPTS,
  ) {
    super(client, outage, log);
  }

  get exclusive(): boolean {
    return this.scripts.exclusive;
  }

  acquire(keys: LockKeys, token: string, ttlMs: number): Promise<AcquireResult> {
    return this.grant(keys, token, ttlMs, () =>
      this.scripts.acquire.run<[number, number]>(
        this.client,
        [...keys.locks, ...(keys.shared ?? []), ...keys.fences],
        [token, ttlMs, ...(keys.acquireArgs ?? [])],
      ),
    );
  }

  /** Redlock: see lock-fence.lua. */
  async raiseFences(keys: LockKeys, fencingToken: number): Promise<void> {
    await this.outage.guard(fenceScript.run(this.client, keys.fences, [fencingToken]));
  }

  extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined> {
    return this.renew(ttlMs, () => this.scripts.extend.run<number>(this.client, keys.locks, [token, ttlMs]));
  }

  protected async releaseNow(keys: LockKeys, token: string): Promise<boolean> {
    return (await this.outage.guard(this.scripts.release.run<number>(this.client, keys.locks, [token]))) > 0;
  }
}

/**
 * Whether a command that failed may still have run on the server, so that what it may have taken
 * must be given back: it got no reply in time, or the connection closed with it on its way
 * (`CommandInFlightLostError` on a Cluster; on one server ioredis fails the commands in flight
 * with a MaxRetriesPerRequestError, or aborts a pipeline). An error Redis answered (CLUSTERDOWN,
 * TRYAGAIN, MOVED, LOADING, BUSY, NOREPLICAS...) or one ioredis raised before sending ("Cluster
 * isn't ready", "Stream isn't writeable") means it did not run; so does "Connection is closed.",
 * except on a client closed for good, whose releases could not be sent anyway.
 *
 * A Cluster command that ioredis kept retrying after CLUSTERDOWN or TRYAGAIN until
 * `commandTimeout` can fail as a timeout, though it never ran: it is given back too (the timeout
 * does not say where the command was), within the bounds of the retried releases.
 */
function mayHaveRun(error: unknown): boolean {
  if (outageOf(error) === 'timeout' || error instanceof CommandInFlightLostError) return true;
  return (
    error instanceof Error &&
    (error.name === 'MaxRetriesPerRequestError' || error.message.startsWith('Command aborted due to connection close'))
  );
}
