import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { LockService, REDIS_CLIENT, RedisKeys } from '../../lib/index.js';

/** The fair lock options of the tests that wait for leases to end: a waiter keeps its place 1s, and tries every 250ms. */
export const QUICK_FAIR = { fair: { waiterLease: '1s', poll: '250ms' } } as const;

/**
 * Looks at the queue of a fair lock's key in Redis, as the app's Redis sees it. The key is one
 * without characters that keys encode; with a hash tag of its own (`{order:1}:a`), it keeps it.
 */
export class FairQueue {
  readonly queue: string;
  readonly heartbeats: string;
  readonly lock: string;
  private readonly redis: Redis;

  constructor(app: INestApplicationContext, key: string) {
    const { prefix } = app.get(RedisKeys);
    const part = key.includes('{') ? `t:${key}` : `{${key}}`;
    this.queue = `${prefix}lock-queue:${part}`;
    this.heartbeats = `${prefix}lock-heartbeat:${part}`;
    this.lock = `${prefix}lock:${part}`;
    this.redis = app.get<Redis>(REDIS_CLIENT);
  }

  /** The waiter ids in line, first to be served first. */
  waiters(): Promise<string[]> {
    return this.redis.zrange(this.queue, '0', '-1');
  }

  /** Resolves once `count` waiters are in line. */
  async untilWaiting(count: number): Promise<void> {
    await expect.poll(() => this.redis.zcard(this.queue), { timeout: 20_000, interval: 5 }).toBe(count);
  }

  /** When the heartbeat lease of `waiter` ends, in ms of Redis's clock. */
  async leaseEnd(waiter: string): Promise<number> {
    return Number(await this.redis.zscore(this.heartbeats, waiter));
  }

  /** Redis's clock, in ms. */
  async now(): Promise<number> {
    const [seconds, micros] = await this.redis.time();
    return Number(seconds) * 1000 + Number(micros) / 1000;
  }
}

/** Waits for the fair lock on `key` in `app`; holding it, appends `<label>:<fencing token>` to the list `list`, then releases. */
export function waitAndRecord(app: INestApplicationContext, key: string, label: string, list: string): Promise<number> {
  const redis = app.get<Redis>(REDIS_CLIENT);
  return app.get(LockService).using(
    key,
    async (lock) => {
      await redis.rpush(list, `${label}:${lock.fencingToken}`);
      return lock.fencingToken;
    },
    { fair: true, wait: '60s' },
  );
}
