import { Injectable, type INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, LockNotAcquiredError, LockService, REDIS_CLIENT, WithLock } from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { FairQueue, QUICK_FAIR } from './fair-queue.js';

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

@Injectable()
class Desk {
  served: string[] = [];

  @WithLock<[string, string]>({ key: (desk) => desk, fair: true, wait: '30s' })
  async serve(_desk: string, customer: string): Promise<void> {
    this.served.push(customer);
  }
}

/** How many times fair waiters of the app tried again for `cause` ('notified' or 'polled'). */
async function wakeups(registry: Registry, cause: 'notified' | 'polled'): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((candidate) => candidate.name === 'redis_patterns_lock_fair_wakeups_total');
  return metric?.values.find((value) => value.labels.cause === cause)?.value ?? 0;
}

describe.each(topologies)('fair locks on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  /** Two instances sharing the key prefix; the first has the @WithLock provider. */
  let apps: INestApplicationContext[];
  let locks: LockService[];
  beforeAll(async () => {
    apps = await Promise.all([
      startContext({ connection: connection(), keyPrefix, lock: QUICK_FAIR }, { providers: [Desk] }),
      startContext({ connection: connection(), keyPrefix, lock: QUICK_FAIR }),
    ]);
    locks = apps.map((app) => app.get(LockService));
  });
  afterAll(() => Promise.all((apps ?? []).map((app) => app.close())));

  it('takes a waiter whose wait ends out of the line, so the one behind it is served next', async () => {
    const key = fresh('desk');
    const line = new FairQueue(apps[0], key);
    const holder = await locks[1].acquire(key, { fair: true, ttl: '30s' });
    const impatient = locks[0].acquire(key, { fair: true, wait: '2s' }).catch((error: unknown) => error);
    await line.untilWaiting(1);
    const [impatientId] = await line.waiters();
    const patient = locks[1].acquire(key, { fair: true, wait: '30s' });
    await line.untilWaiting(2);

    const error = await impatient;
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ reason: 'timeout', keys: [key] });
    const left = await line.waiters();
    expect(left).toHaveLength(1);
    expect(left).not.toContain(impatientId);

    await holder.release();
    const lock = await patient;
    expect(lock.fencingToken).toBe(holder.fencingToken + 1);
    expect(await line.waiters()).toEqual([]);
    await lock.release();
  });

  it('without a wait, refuses a free lock while someone waits for it (a plain acquisition does not queue), until that waiter is gone', async () => {
    const key = fresh('ghost');
    const line = new FairQueue(apps[0], key);
    const redis = apps[0].get<Redis>(REDIS_CLIENT);
    // A waiter of another instance, whose place lasts 1.5s more.
    const leaseEnd = Math.ceil(await line.now()) + 1_500;
    await redis.zadd(line.queue, 1, 'elsewhere.1');
    await redis.zadd(line.heartbeats, leaseEnd, 'elsewhere.1');

    expect(await locks[0].tryAcquire(key, { fair: true })).toBeNull();
    await expect(locks[0].acquire(key, { fair: true })).rejects.toMatchObject({ reason: 'held' });
    // Not queued: a try without a wait never joins the line.
    expect(await line.waiters()).toEqual(['elsewhere.1']);
    const plain = await locks[0].tryAcquire(key);
    expect(plain).not.toBeNull();
    await plain!.release();

    await expect.poll(() => line.now(), { timeout: 10_000, interval: 50 }).toBeGreaterThan(leaseEnd);
    const fair = await locks[0].tryAcquire(key, { fair: true });
    expect(fair?.fencingToken).toBe(plain!.fencingToken + 1);
    expect(await line.waiters()).toEqual([]);
    await fair!.release();
  });

  it('shares the fence (and the lock) with plain locks of the key: tokens keep growing across both', async () => {
    const key = fresh('mixed');
    const tokens: number[] = [];
    for (const fair of [false, true, false, true]) {
      const lock = await locks[tokens.length % 2].acquire(key, { fair });
      // Held: neither kind gets in.
      expect(await locks[1].tryAcquire(key, { fair: !fair })).toBeNull();
      tokens.push(lock.fencingToken);
      await lock.release();
    }
    expect(tokens).toEqual([tokens[0], tokens[0] + 1, tokens[0] + 2, tokens[0] + 3]);
  });

  it('locks several keys at once in line: a waiter for one key waits behind an earlier waiter for both', async () => {
    // One hash tag, so the keys share a Cluster slot.
    const tag = fresh('pair');
    const [a, b] = [`{${tag}}:a`, `{${tag}}:b`];
    const lineB = new FairQueue(apps[0], b);
    const holder = await locks[1].acquire(a, { fair: true, ttl: '30s' });
    const order: string[] = [];
    const record = (name: string) => async (lock: { fencingToken: number }) => {
      order.push(name);
      return lock.fencingToken;
    };
    const both = locks[0].using([a, b], record('both'), { fair: true, wait: '30s' });
    await lineB.untilWaiting(1);
    // b is free, but the waiter for both came first.
    expect(await locks[1].tryAcquire(b, { fair: true })).toBeNull();
    const onlyB = locks[1].using(b, record('b'), { fair: true, wait: '30s' });
    await lineB.untilWaiting(2);
    await holder.release();
    const tokens = await Promise.all([both, onlyB]);
    expect(order).toEqual(['both', 'b']);
    expect(tokens[0]).toBe(holder.fencingToken + 1);
    expect(tokens[1]).toBe(tokens[0] + 1);
  });

  it('@WithLock({ fair: true }) runs calls in the order they came', async () => {
    const desk = apps[0].get(Desk);
    const key = fresh('counter');
    const line = new FairQueue(apps[0], key);
    const holder = await locks[1].acquire(key, { fair: true });
    const calls: Promise<void>[] = [];
    for (const customer of ['ann', 'bob', 'cy', 'dee']) {
      calls.push(desk.serve(key, customer));
      await line.untilWaiting(calls.length);
    }
    await holder.release();
    await Promise.all(calls);
    expect(desk.served.slice(-4)).toEqual(['ann', 'bob', 'cy', 'dee']);
  });

  it('rejects bad options, naming them', async () => {
    await expect(locks[0].acquire('k', { fair: 'yes' as never })).rejects.toThrow(/"options.fair": expected true or false, got "yes"/);
    expect(() =>
      WithLock({ key: 'x', fair: 1 as never })({ constructor: { name: 'Desk' } } as never, 'serve', { value: () => undefined }),
    ).toThrow(/"@WithLock on Desk.serve.fair": expected true or false/);
    const start = (fair: unknown) => startContext({ connection: connection(), lock: { fair: fair as never } });
    await expect(start({ waiterLease: '1s', poll: '600ms' })).rejects.toThrow(
      /"lock.fair.poll": expected at most half of lock.fair.waiterLease \(1000ms\), got "600ms"/,
    );
    await expect(start({ waiterLease: 0 })).rejects.toThrow(/"lock.fair.waiterLease": expected a duration greater than 0/);
    await expect(start({ lease: '1s' })).rejects.toThrow(/"lock.fair.lease": expected one of the known options \(waiterLease, poll\)/);
    await expect(start(true)).rejects.toThrow(InvalidOptionError);
  });

  it('refuses fair: true with lock.redlock, at the call, naming the option', async () => {
    const app = await startContext({
      connection: connection(),
      connections: { a: connection(), b: connection(), c: connection() },
      lock: { redlock: { connections: ['a', 'b', 'c'] } },
    });
    try {
      const error = await app
        .get(LockService)
        .acquire('k', { fair: true })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(error).toMatchObject({ option: 'options.fair' });
      expect((error as Error).message).toMatch(/fair locks queue on the main connection, not on a Redlock quorum/);
    } finally {
      await app.close();
    }
  });

  it("ends a waiter's wait when its app shuts down ('store-unavailable'), and takes it out of the line", async () => {
    const key = fresh('closing');
    const line = new FairQueue(apps[0], key);
    const holder = await locks[0].acquire(key, { fair: true });
    const leaving = await startContext({ connection: connection(), keyPrefix, lock: QUICK_FAIR });
    const waiting = leaving
      .get(LockService)
      .acquire(key, { fair: true, wait: '30s' })
      .catch((error: unknown) => error);
    await line.untilWaiting(1);
    await leaving.close();
    expect(await waiting).toMatchObject({ reason: 'store-unavailable' });
    expect(await line.waiters()).toEqual([]);
    await holder.release();
  });
});

describe.each(topologies)('a fair waiter on $topology is told of a release', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  const registry = new Registry();
  let holderApp: INestApplicationContext;
  let waiterApp: INestApplicationContext;
  beforeAll(async () => {
    // Polls far apart: each wait below is over long before its first poll, unless it was not told.
    const lock = { fair: { waiterLease: '10s', poll: '5s' } } as const;
    [holderApp, waiterApp] = await Promise.all([
      startContext({ connection: connection(), keyPrefix, lock }),
      startContext({ connection: connection(), keyPrefix, lock, metrics: { prometheus: { registry } } }),
    ]);
  });
  afterAll(() => Promise.all([holderApp?.close(), waiterApp?.close()]));

  /** The waiter app waits for `key` while the holder app holds it, until released by `end`. */
  async function waitBehind(key: string, end: (holder: Awaited<ReturnType<LockService['acquire']>>) => Promise<unknown>) {
    const line = new FairQueue(waiterApp, key);
    const holder = await holderApp.get(LockService).acquire(key, { fair: true, ttl: '30s' });
    const waiting = waiterApp.get(LockService).acquire(key, { fair: true, wait: '5m' });
    await line.untilWaiting(1);
    await end(holder);
    const lock = await waiting;
    expect(lock.fencingToken).toBe(holder.fencingToken + 1);
    await lock.release();
  }

  it('on its instance channel, and tries again at once: not one poll', async () => {
    // The first wait of an instance subscribes to its channel; this one measures a wait after that.
    await waitBehind(fresh('first'), (holder) => holder.release());
    const before = { notified: await wakeups(registry, 'notified'), polled: await wakeups(registry, 'polled') };
    await waitBehind(fresh('desk'), (holder) => holder.release());
    expect(await wakeups(registry, 'notified')).toBe(before.notified + 1);
    expect(await wakeups(registry, 'polled')).toBe(before.polled);
  });
});

describe.each(topologies)('a fair waiter on $topology not told of its turn', ({ connection }) => {
  it('finds it at its next poll (a holder whose lease ran out sends no word)', async () => {
    const registry = new Registry();
    const keyPrefix = uniquePrefix();
    const [holderApp, waiterApp] = await Promise.all([
      startContext({ connection: connection(), keyPrefix, lock: QUICK_FAIR }),
      startContext({ connection: connection(), keyPrefix, lock: QUICK_FAIR, metrics: { prometheus: { registry } } }),
    ]);
    try {
      const key = fresh('expiring');
      const holder = await holderApp.get(LockService).acquire(key, { fair: true, ttl: '600ms' });
      const lock = await waiterApp.get(LockService).acquire(key, { fair: true, wait: '30s' });
      expect(lock.fencingToken).toBe(holder.fencingToken + 1);
      expect(holder.lost).toBe(true);
      expect(await wakeups(registry, 'notified')).toBe(0);
      expect(await wakeups(registry, 'polled')).toBeGreaterThanOrEqual(1);
      await lock.release();
    } finally {
      await Promise.all([holderApp.close(), waiterApp.close()]);
    }
  });
});
