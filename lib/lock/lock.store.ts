import { RedisScript } from '../core/redis-script.js';
import type { RedisClient } from '../core/redis-client.js';

const acquireScript = RedisScript.fromFile(new URL('./lock-acquire.lua', import.meta.url));
const extendScript = RedisScript.fromFile(new URL('./lock-extend.lua', import.meta.url));
const releaseScript = RedisScript.fromFile(new URL('./lock-release.lua', import.meta.url));
const fenceScript = RedisScript.fromFile(new URL('./lock-fence.lua', import.meta.url));

/** The Redis keys of one lock: its keys and their fence keys (same hash tag each). */
export interface LockKeys {
  locks: readonly string[];
  fences: readonly string[];
}

/**
 * What an acquisition attempt got: the lock (with its fencing token and how long it is surely
 * valid), or how long its holder still has it; `expired` when it was granted too late to be of use.
 */
export type AcquireResult = { acquired: true; fencingToken: number; validityMs: number } | { acquired: false; heldForMs: number; expired?: true };

/** Where locks live: one server or Cluster, or a Redlock quorum of independent servers. */
export interface LockStore {
  acquire(keys: LockKeys, token: string, ttlMs: number): Promise<AcquireResult>;
  /** The validity after renewing, or undefined when the lock is no longer the caller's. */
  extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined>;
  release(keys: LockKeys, token: string): Promise<boolean>;
}

/** Locks on one connection (a server, a Sentinel-managed master, or a Cluster). */
export class SingleNodeStore implements LockStore {
  constructor(private readonly client: RedisClient) {}

  async acquire(keys: LockKeys, token: string, ttlMs: number): Promise<AcquireResult> {
    const started = performance.now();
    let reply: [number, number];
    try {
      reply = await acquireScript.run<[number, number]>(this.client, [...keys.locks, ...keys.fences], [token, ttlMs]);
    } catch (error) {
      // It may have run (a timeout): give back what it may have taken.
      this.release(keys, token).catch(() => undefined);
      throw error;
    }
    const [fencingToken, heldForMs] = reply;
    if (fencingToken === 0) return { acquired: false, heldForMs };
    const validityMs = ttlMs - (performance.now() - started);
    if (validityMs > 0) return { acquired: true, fencingToken, validityMs };
    // The reply came after the lease: never hand out a lock that may already be someone else's.
    await this.release(keys, token).catch(() => undefined);
    return { acquired: false, heldForMs: 0, expired: true };
  }

  /** Redlock: see lock-fence.lua. */
  async raiseFences(keys: LockKeys, fencingToken: number): Promise<void> {
    await fenceScript.run(this.client, keys.fences, [fencingToken]);
  }

  async extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined> {
    const started = performance.now();
    const renewed = await extendScript.run<number>(this.client, keys.locks, [token, ttlMs]);
    return renewed === 1 ? ttlMs - (performance.now() - started) : undefined;
  }

  async release(keys: LockKeys, token: string): Promise<boolean> {
    return (await releaseScript.run<number>(this.client, keys.locks, [token])) > 0;
  }
}

/**
 * Redlock: a lock is held when a majority of independent servers granted it within its lease.
 * Its validity subtracts the time taken and the clock drift (`driftFactor` of the lease, plus
 * 2 ms); with no validity left it is released everywhere and reported as not acquired. The
 * fencing token is the highest of the majority's, written back to the majority's fences before
 * the lock is handed out: any later majority shares a server with it, so later tokens are higher
 * (provided the servers persist their data).
 */
export class RedlockStore implements LockStore {
  private readonly quorum: number;

  constructor(
    private readonly stores: readonly SingleNodeStore[],
    private readonly driftFactor: number,
  ) {
    this.quorum = Math.floor(stores.length / 2) + 1;
  }

  async acquire(keys: LockKeys, token: string, ttlMs: number): Promise<AcquireResult> {
    const started = performance.now();
    const outcome = await this.untilDecided(this.stores.map((store) => store.acquire(keys, token, ttlMs)), (result) => result.acquired);
    if (outcome.passed.length >= this.quorum && ttlMs - (performance.now() - started) - this.drift(ttlMs) > 0) {
      const fencingToken = Math.max(...outcome.passed.map((result) => (result as { fencingToken: number }).fencingToken));
      // The token must reach a majority's fences, or a later majority could hand out a lower one.
      const raised = await Promise.allSettled(outcome.passedBy.map((index) => this.stores[index].raiseFences(keys, fencingToken)));
      const validityMs = ttlMs - (performance.now() - started) - this.drift(ttlMs);
      if (raised.filter((result) => result.status === 'fulfilled').length >= this.quorum && validityMs > 0) return { acquired: true, fencingToken, validityMs };
      void this.release(keys, token);
      const failure = raised.find((result) => result.status === 'rejected');
      if (failure) throw (failure as PromiseRejectedResult).reason;
      return { acquired: false, heldForMs: 0, expired: true };
    }
    // Not held: give back whatever was granted, including by servers still to answer.
    void this.release(keys, token);
    if (outcome.passed.length >= this.quorum) return { acquired: false, heldForMs: 0, expired: true };
    if (outcome.failed.length > this.stores.length - this.quorum) throw outcome.failed[0];
    const held = outcome.others.filter((result): result is { acquired: false; heldForMs: number } => !result.acquired);
    return { acquired: false, heldForMs: Math.max(0, ...held.map((result) => result.heldForMs)) };
  }

  async extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined> {
    const started = performance.now();
    const outcome = await this.untilDecided(this.stores.map((store) => store.extend(keys, token, ttlMs)), (validity) => validity !== undefined);
    const validityMs = ttlMs - (performance.now() - started) - this.drift(ttlMs);
    if (outcome.passed.length >= this.quorum && validityMs > 0) return validityMs;
    if (outcome.failed.length > this.stores.length - this.quorum) throw outcome.failed[0];
    return undefined;
  }

  /** Releases everywhere; answers once a majority did (or cannot), the others finishing in the background. */
  async release(keys: LockKeys, token: string): Promise<boolean> {
    const outcome = await this.untilDecided(this.stores.map((store) => store.release(keys, token)), (released) => released);
    return outcome.passed.length > 0;
  }

  /**
   * Settles as soon as a majority passed, or a majority can no longer pass: a slow or stalled
   * server does not hold up the decision (its late answer is released or ignored).
   */
  private untilDecided<T>(attempts: readonly Promise<T>[], passes: (result: T) => boolean): Promise<{ passed: T[]; passedBy: number[]; others: T[]; failed: unknown[] }> {
    return new Promise((resolve) => {
      const outcome = { passed: [] as T[], passedBy: [] as number[], others: [] as T[], failed: [] as unknown[] };
      let settled = false;
      const check = () => {
        const cannotPass = outcome.others.length + outcome.failed.length > this.stores.length - this.quorum;
        if (!settled && (outcome.passed.length >= this.quorum || cannotPass)) {
          settled = true;
          resolve({ passed: [...outcome.passed], passedBy: [...outcome.passedBy], others: [...outcome.others], failed: [...outcome.failed] });
        }
      };
      attempts.forEach((attempt, index) =>
        attempt.then(
          (result) => {
            if (passes(result)) {
              outcome.passed.push(result);
              outcome.passedBy.push(index);
            } else outcome.others.push(result);
            check();
          },
          (error: unknown) => {
            outcome.failed.push(error);
            check();
          },
        ),
      );
    });
  }

  private drift(ttlMs: number): number {
    return ttlMs * this.driftFactor + 2;
  }
}
