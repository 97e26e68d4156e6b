import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockNotAcquiredError, LockService, RedisKeys, type Lock } from '../../lib/index.js';
import { commandCalls, Observers, ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { startContext } from '../support/testing-app.js';

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}`;

/** Short retry pauses (1-20 ms, about 10 on average): waiters that all tried would send dozens of attempts each a second. */
const RETRY = { minDelay: '20ms', maxDelay: '20ms' } as const;
const WAIT = '20s';

/** How many scripts the server ran (every attempt, grant and release is one). */
const scriptCalls = (info: string) => commandCalls(info, 'eval', 'evalsha');

// A server of the suite's own: the scripts it runs are this suite's alone.
describe.each(ownRedisSetups([]))('exclusive waiters of one instance wait in line, on $topology', ({ start }) => {
  let redis: OwnRedis;
  /** The instance whose callers wait, and another that holds the locks they want. */
  let waiters: INestApplicationContext;
  let holders: INestApplicationContext;
  let locks: LockService;
  let otherInstance: LockService;
  const observers = new Observers();
  const observerOf = async (key: string) => observers.of(await redis.serverOf(`${waiters.get(RedisKeys).prefix}lock:{${key}}`));

  beforeAll(async () => {
    redis = await start();
    [waiters, holders] = await Promise.all(
      [0, 1].map(() => startContext({ connection: redis.connection, keyPrefix: 'line:', lock: { retry: RETRY } })),
    );
    locks = waiters.get(LockService);
    otherInstance = holders.get(LockService);
  }, 60_000);
  afterAll(async () => {
    observers.close();
    await Promise.all([waiters?.close(), holders?.close()]);
    await redis?.destroy();
  });

  it('sends the attempts of one waiter, not of each, while another instance holds the lock', async () => {
    const key = fresh('report');
    const holder = await otherInstance.acquire(key, { ttl: '30s' });
    const observer = await observerOf(key);
    const waiting = Array.from({ length: 5 }, () => locks.acquire(key, { wait: WAIT }));
    // Every waiter's first attempt has been refused: from now on, only the first of the line tries.
    await sleep(100);
    await observer.config('RESETSTAT');
    await sleep(1_000);
    const attempts = scriptCalls(await observer.info('commandstats'));
    // One waiter trying every 10 ms or so: about 100 attempts; five would send about 500.
    expect(attempts).toBeGreaterThan(10);
    expect(attempts).toBeLessThan(250);
    await holder.release();
    // Each released once granted: the line's order is that of the refused first attempts' replies.
    await Promise.all(waiting.map(async (acquisition) => expect(await (await acquisition).release()).toBe(true)));
  });

  it('grants the lock to the waiters of one instance in the order they came', async () => {
    const key = fresh('invoice');
    const holder = await otherInstance.acquire(key, { ttl: '30s' });
    const granted: number[] = [];
    const waiting = Array.from({ length: 6 }, async (_, index) => {
      await sleep(30 * index);
      const lock = await locks.acquire(key, { wait: WAIT });
      granted.push(index);
      // Held a little while: those behind keep trying meanwhile if they are not in line.
      await sleep(30);
      expect(await lock.release()).toBe(true);
    });
    await sleep(6 * 30 + 100);
    // Released by the other instance: no release of this one wakes a waiter, the first of the line finds it free.
    await holder.release();
    await Promise.all(waiting);
    expect(granted).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('gives the turn to the next waiter when the first gives up', async () => {
    const key = fresh('export');
    const holder = await otherInstance.acquire(key, { ttl: '30s' });
    const first = locks.acquire(key, { wait: '300ms' }).catch((error: unknown) => error);
    await sleep(50);
    const second = locks.acquire(key, { wait: WAIT });
    const gaveUp = await first;
    expect(gaveUp).toBeInstanceOf(LockNotAcquiredError);
    expect((gaveUp as LockNotAcquiredError).reason).toBe('timeout');
    await sleep(200);
    // Released by the other instance: the second, now first of the line, finds it free by trying.
    await holder.release();
    const lock: Lock = await second;
    expect(lock.fencingToken).toBe(holder.fencingToken + 1);
    expect(await lock.release()).toBe(true);
  });

  it('ends the wait of every waiter in line when the app shuts down: each fails at once, as store-unavailable', async () => {
    // Retry pauses of ten minutes: a waiter left to its pause or its turn would outlast the test.
    const closing = await startContext({
      connection: redis.connection,
      keyPrefix: 'line:',
      lock: { retry: { minDelay: '10m', maxDelay: '10m' } },
    });
    const key = fresh('closing');
    const holder = await otherInstance.acquire(key, { ttl: '30s' });
    const waiting = Array.from({ length: 3 }, () =>
      closing
        .get(LockService)
        .acquire(key, { wait: '20m' })
        .catch((error: unknown) => error),
    );
    await sleep(100);
    await closing.close();
    // The first of the line was pausing, the two behind it waiting for their turn.
    for (const outcome of await Promise.all(waiting)) {
      expect(outcome).toBeInstanceOf(LockNotAcquiredError);
      expect((outcome as LockNotAcquiredError).reason).toBe('store-unavailable');
    }
    expect(await holder.release()).toBe(true);
  });

  it('lines up the writers of a read-write lock and the takers of every permit of a semaphore', async () => {
    const config = fresh('config');
    const reader = await otherInstance.readWrite(config).read.acquire({ ttl: '30s' });
    const exports = fresh('exports');
    const permitHolder = await otherInstance.semaphore(exports, 1).acquire({ ttl: '30s' });
    const writers = Array.from({ length: 3 }, () => locks.readWrite(config).write.acquire({ wait: WAIT }));
    const takers = Array.from({ length: 3 }, () => locks.semaphore(exports, 1).acquire({ wait: WAIT }));
    // The servers of both keys (one on a standalone server), each counted once.
    const servers = [...new Set([await observerOf(config), await observerOf(exports)])];
    await sleep(100);
    await Promise.all(servers.map((server) => server.config('RESETSTAT')));
    await sleep(1_000);
    // One writer and one taker trying (about 100 attempts each a second), not three of each.
    let attempts = 0;
    for (const server of servers) attempts += scriptCalls(await server.info('commandstats'));
    expect(attempts).toBeGreaterThan(20);
    expect(attempts).toBeLessThan(450);
    await Promise.all([reader.release(), permitHolder.release()]);
    await Promise.all([...writers, ...takers].map(async (acquisition) => expect(await (await acquisition).release()).toBe(true)));
  });
});
