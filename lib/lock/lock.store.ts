import { RedisScript } from '../core/redis-script.js';
import type { RedisClient } from '../core/redis-client.js';

const acquireScript = RedisScript.fromFile(new URL('./lock-acquire.lua', import.meta.url));
const extendScript = RedisScript.fromFile(new URL('./lock-extend.lua', import.meta.url));
const releaseScript = RedisScript.fromFile(new URL('./lock-release.lua', import.meta.url));

/** The Redis keys of one lock: its keys and their fence keys (same hash tag each). */
export interface LockKeys {
  locks: readonly string[];
  fences: readonly string[];
}

/** What an acquisition attempt got: the lock (with its fencing token and how long it is surely valid), or who holds it. */
export type AcquireResult = { acquired: true; fencingToken: number; validityMs: number } | { acquired: false; heldForMs: number };

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
    const [fencingToken, heldForMs] = await acquireScript.run<[number, number]>(this.client, [...keys.locks, ...keys.fences], [token, ttlMs]);
    if (fencingToken === 0) return { acquired: false, heldForMs };
    return { acquired: true, fencingToken, validityMs: ttlMs - (performance.now() - started) };
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
 * fencing token is the highest of the majority's (majorities overlap, so it still only grows,
 * provided the servers persist their data).
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
    const results = await Promise.allSettled(this.stores.map((store) => store.acquire(keys, token, ttlMs)));
    const granted = results.filter((result) => result.status === 'fulfilled' && result.value.acquired);
    const validityMs = ttlMs - (performance.now() - started) - this.drift(ttlMs);
    if (granted.length >= this.quorum && validityMs > 0) {
      const fencingToken = Math.max(...granted.map((result) => (result as PromiseFulfilledResult<{ fencingToken: number }>).value.fencingToken));
      return { acquired: true, fencingToken, validityMs };
    }
    if (granted.length > 0) await this.release(keys, token);
    const answered = results.filter((result) => result.status === 'fulfilled');
    // Too few servers answered to know: that is an outage, not contention.
    if (answered.length < this.quorum) throw (results.find((result) => result.status === 'rejected') as PromiseRejectedResult).reason;
    const held = answered.map((result) => (result as PromiseFulfilledResult<AcquireResult>).value).filter((value) => !value.acquired);
    return { acquired: false, heldForMs: Math.max(0, ...held.map((value) => (value as { heldForMs: number }).heldForMs)) };
  }

  async extend(keys: LockKeys, token: string, ttlMs: number): Promise<number | undefined> {
    const started = performance.now();
    const results = await Promise.allSettled(this.stores.map((store) => store.extend(keys, token, ttlMs)));
    const renewed = results.filter((result) => result.status === 'fulfilled' && result.value !== undefined).length;
    const validityMs = ttlMs - (performance.now() - started) - this.drift(ttlMs);
    if (renewed >= this.quorum && validityMs > 0) return validityMs;
    if (results.filter((result) => result.status === 'fulfilled').length < this.quorum) throw (results.find((result) => result.status === 'rejected') as PromiseRejectedResult).reason;
    return undefined;
  }

  async release(keys: LockKeys, token: string): Promise<boolean> {
    const results = await Promise.allSettled(this.stores.map((store) => store.release(keys, token)));
    return results.some((result) => result.status === 'fulfilled' && result.value);
  }

  private drift(ttlMs: number): number {
    return ttlMs * this.driftFactor + 2;
  }
}
