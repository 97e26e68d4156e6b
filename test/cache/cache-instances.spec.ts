import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, PubSubService } from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The key lists of the invalidation messages that `app` receives with a key holding `marker`, from when it resolves. */
async function heardBy(app: INestApplicationContext, marker: string): Promise<{ heard: string[][]; stop(): void }> {
  const heard: string[][] = [];
  const pubsub = app.get(PubSubService);
  const listening = pubsub.subscribe<{ keys?: string[] }>('cache:invalidate').subscribe(({ keys }) => {
    if (keys?.some((key) => key.includes(marker))) heard.push(keys);
  });
  await pubsub.whenSubscribed('cache:invalidate');
  return { heard, stop: () => listening.unsubscribe() };
}

describe.each(topologies)('the cache across app instances on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let instances: INestApplicationContext[];
  beforeAll(async () => {
    instances = await Promise.all(
      [1, 2, 3].map(() => startContext({ connection: connection(), keyPrefix, cache: { l1: { ttl: '1m' }, stampede: { wait: '30s' } } })),
    );
  });
  afterAll(() => Promise.all(instances.map((app) => app.close())));

  it('calls the loader once for 200 concurrent misses spread over three instances', async () => {
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(100);
      return { loadedBy: calls };
    };
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => instances[i % 3].get(CacheService).getOrSet('stampede', loader)),
    );
    expect(calls).toBe(1);
    expect(results.every((result) => result.loadedBy === 1)).toBe(true);
  });

  it('waiters on other instances load themselves as soon as the lock holder gives up', async () => {
    const [a, b] = instances.map((app) => app.get(CacheService));
    const failing = a.getOrSet(
      'holder-fails',
      async () => {
        await sleep(100);
        throw new Error('source down');
      },
      { lock: true },
    );
    await sleep(20);
    // With a 30s stampede wait, B would hang here if it only waited for the value.
    const waiter = b.getOrSet('holder-fails', async () => 'loaded by b');
    await expect(failing).rejects.toThrow('source down');
    expect(await waiter).toBe('loaded by b');
  });

  it('when the lock holder gives up, one waiter takes the lock and loads, and the others get its value', async () => {
    const [a, b, c] = instances.map((app) => app.get(CacheService));
    const failing = a.getOrSet('holder-fails-many', async () => {
      await sleep(100);
      throw new Error('source down');
    });
    await sleep(20);
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(100);
      return { loadedBy: calls };
    };
    const waiters = Array.from({ length: 10 }, (_, i) => (i % 2 ? b : c).getOrSet('holder-fails-many', loader));
    await expect(failing).rejects.toThrow('source down');
    const results = await Promise.all(waiters);
    expect(calls).toBe(1);
    expect(results.every((result) => result.loadedBy === 1)).toBe(true);
  });

  it("a write without L1 still drops the writer's own L1 copy", async () => {
    const cache = instances[0].get(CacheService);
    await expect
      .poll(async () => (await cache.set('own-copy', 'v1', { l1: true }), await cache.get('own-copy', { l1: true }), cache.stats().l1.hits))
      .toBeGreaterThan(0);
    await cache.set('own-copy', 'v2');
    expect(await cache.get('own-copy', { l1: true })).toBe('v2');
  });

  it('without the lock, each instance loads once (per-process single flight only)', async () => {
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(100);
      return 1;
    };
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => instances[i % 3].get(CacheService).getOrSet('no-lock', loader, { lock: false })),
    );
    expect(calls).toBeGreaterThan(1); // no cross-instance lock...
    expect(calls).toBeLessThanOrEqual(3); // ...but one load per instance
  });

  it("drops the other instances' L1 copies when one instance writes or deletes", async () => {
    const [a, b] = instances.map((app) => app.get(CacheService));
    await a.set('shared', 'v1', { l1: true });
    // L1 holds entries once the instance hears invalidations (its subscription is confirmed).
    await expect
      .poll(async () => {
        const hits = b.stats().l1.hits;
        await b.get('shared', { l1: true });
        return b.stats().l1.hits - hits;
      })
      .toBe(1);
    expect(await b.get('shared', { l1: true })).toBe('v1');

    await a.set('shared', 'v2', { l1: true });
    await expect.poll(() => b.get('shared', { l1: true })).toBe('v2');
    await a.delete('shared');
    await expect.poll(() => b.get('shared', { l1: true })).toBeUndefined();
  });

  it('announces the keys of writes that finish together in one message, at most 1000 keys to one, and every instance drops them all', async () => {
    const [a, b, c] = instances.map((app) => app.get(CacheService));
    const { heard, stop } = await heardBy(instances[2], 'batched-');
    try {
      const names = Array.from({ length: 200 }, (_, i) => `batched-${i}`);
      await Promise.all(names.map((name) => a.set(name, 'v1', { l1: true })));
      // B and C keep every entry in L1 once they hear invalidations.
      for (const cache of [b, c])
        await expect
          .poll(async () => {
            const hits = cache.stats().l1.hits;
            const values = await Promise.all(names.map((name) => cache.get(name, { l1: true })));
            return values.every((value) => value === 'v1') ? cache.stats().l1.hits - hits : -1;
          })
          .toBe(names.length);
      heard.length = 0;
      await Promise.all(names.map((name) => a.set(name, 'v2', { l1: true })));
      await expect.poll(() => new Set(heard.flat()).size).toBe(names.length);
      // 200 writes issued together finish in a few socket reads: far fewer messages than writes.
      console.log(`[batched] ${heard.length} messages for ${names.length} writes`);
      expect(heard.length).toBeLessThan(names.length);
      for (const cache of [b, c])
        await expect.poll(() => Promise.all(names.map((name) => cache.get(name, { l1: true })))).toEqual(names.map(() => 'v2'));

      // One delete of 1,500 entries: two messages, of 1,000 and 500 keys.
      heard.length = 0;
      const many = Array.from({ length: 1_500 }, (_, i) => `batched-many-${i}`);
      await a.delete(...many);
      await expect.poll(() => heard.map((keys) => keys.length)).toEqual([1_000, 500]);
      expect(new Set(heard.flat()).size).toBe(1_500);
    } finally {
      stop();
    }
  });

  it('writes in a row, each awaited, share messages a millisecond apart, and every instance drops every key', async () => {
    const [a, b, c] = instances.map((app) => app.get(CacheService));
    const { heard, stop } = await heardBy(instances[2], 'in-a-row-');
    try {
      const names = Array.from({ length: 200 }, (_, i) => `in-a-row-${i}`);
      for (const name of names) await a.set(name, 'v1', { l1: true });
      for (const cache of [b, c])
        await expect.poll(() => Promise.all(names.map((name) => cache.get(name, { l1: true })))).toEqual(names.map(() => 'v1'));
      // Every message of the first writes heard (the last may leave a millisecond after them) before counting the second's.
      await expect.poll(() => new Set(heard.flat()).size).toBe(names.length);
      heard.length = 0;
      for (const name of names) await a.set(name, 'v2', { l1: true });
      await expect.poll(() => new Set(heard.flat()).size).toBe(names.length);
      // One message a millisecond at most after the first: a write takes a round trip, far less.
      console.log(`[in a row] ${heard.length} messages for ${names.length} writes`);
      expect(heard[0]).toEqual([expect.stringContaining('in-a-row-0')]);
      expect(heard.length).toBeLessThan(names.length);
      expect(heard.flat()).toHaveLength(names.length);
      for (const cache of [b, c])
        await expect.poll(() => Promise.all(names.map((name) => cache.get(name, { l1: true })))).toEqual(names.map(() => 'v2'));
    } finally {
      stop();
    }
  });

  it("a tag invalidation on one instance keeps another instance's in-flight load from storing", async () => {
    const [a, b] = instances.map((app) => app.get(CacheService));
    // B joins the bus (its subscription confirmed) before the race.
    await expect
      .poll(async () => (await b.set('bus-ready', 1, { l1: true }), await b.get('bus-ready', { l1: true }), b.stats().l1.hits))
      .toBeGreaterThan(0);
    const loading = b.getOrSet(
      'tagged-elsewhere',
      async () => {
        await sleep(200);
        return 'old';
      },
      { tags: ['remote-tag'] },
    );
    await sleep(30);
    await a.invalidateTags(['remote-tag']);
    expect(await loading).toBe('old');
    expect(await a.get('tagged-elsewhere')).toBeUndefined();
  });

  it('hands each caller its own copy from L1 unless shared', async () => {
    const cache = instances[0].get(CacheService);
    await cache.set('mutable', { items: [1] }, { l1: true });
    await expect.poll(async () => (await cache.get('mutable', { l1: true }), cache.stats().l1.hits)).toBeGreaterThan(0);
    const first = await cache.get<{ items: number[] }>('mutable', { l1: true });
    first!.items.push(2);
    expect(await cache.get('mutable', { l1: true })).toEqual({ items: [1] });

    const rich = { when: new Date(5), seen: new Map([['a', new Set([1])]]), bytes: Buffer.from([1, 2]) };
    await cache.set('rich', rich, { l1: true });
    const hitsBefore = cache.stats().l1.hits;
    const copy = await cache.get<typeof rich>('rich', { l1: true });
    expect(cache.stats().l1.hits).toBe(hitsBefore + 1);
    expect(copy).toStrictEqual(rich);
    copy!.when.setTime(0);
    copy!.seen.get('a')!.add(2);
    copy!.bytes[0] = 9;
    expect(await cache.get('rich', { l1: true })).toStrictEqual(rich);
  });

  it('with one instance in a child process: L1 invalidation both ways, and one loader call across processes', async () => {
    const worker = await WorkerProcess.start('cache-worker', { connection: connection(), keyPrefix });
    try {
      const cache = instances[0].get(CacheService);
      await cache.set('cross', 'from-parent', { l1: true });
      expect(await worker.request({ op: 'get', key: 'cross' })).toBe('from-parent');
      await cache.set('cross', 'changed', { l1: true });
      await expect.poll(() => worker.request({ op: 'get', key: 'cross' })).toBe('changed');
      await worker.request({ op: 'set', key: 'cross', value: 'from-child' });
      await expect.poll(() => cache.get('cross', { l1: true })).toBe('from-child');

      let calls = 0;
      const parentLoads = Array.from({ length: 50 }, () =>
        cache.getOrSet('cross-stampede', async () => {
          calls++;
          await sleep(150);
          return 'parent';
        }),
      );
      const childLoads = Array.from({ length: 50 }, () =>
        worker.request<string>({ op: 'getOrSet', key: 'cross-stampede', value: 'child', delayMs: 150 }),
      );
      const results = await Promise.all([...parentLoads, ...childLoads]);
      const childCalls = (await worker.request<{ loaderCalls: number }>({ op: 'stats' })).loaderCalls;
      expect(calls + childCalls).toBe(1);
      expect(new Set(results).size).toBe(1);
    } finally {
      worker.endInput();
      await Promise.race([worker.exited, sleep(5_000).then(() => worker.kill('SIGKILL'))]);
    }
  }, 60_000);
});

describe('L1 after the subscriber reconnects', () => {
  it('is cleared, because invalidations may have been missed', async () => {
    const { RedisTestServer } = await import('../support/redis-server.js');
    const server = await RedisTestServer.start();
    const app = await startContext({ connection: server.address, reconnect: { minDelay: '20ms', maxDelay: '100ms' }, cache: {} });
    const cache = app.get(CacheService);
    await expect
      .poll(
        async () => (
          await cache.set('survives-in-redis-only', 'x', { l1: true, ttl: '1m' }),
          await cache.get('survives-in-redis-only', { l1: true }),
          cache.stats().l1.hits
        ),
      )
      .toBeGreaterThan(0);
    const hitsBefore = cache.stats().l1.hits;
    await server.stop();
    // While Redis is down the L1 copy is still served.
    expect(await cache.get('survives-in-redis-only', { l1: true })).toBe('x');
    expect(cache.stats().l1.hits).toBe(hitsBefore + 1);
    await server.start();
    // The restarted Redis is empty, and L1 was cleared on reconnect: the entry is gone everywhere.
    await expect.poll(() => cache.get('survives-in-redis-only', { l1: true }).catch(() => 'error'), { timeout: 10_000 }).toBeUndefined();
    await app.close();
    await server.destroy();
  }, 30_000);
});
