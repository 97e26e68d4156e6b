import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { Redis as IORedis, type Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CacheService,
  InvalidationAbortedError,
  InvalidationIncompleteError,
  isCluster,
  RedisConnections,
  RedisKeys,
  type RedisClient,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { command, sleep } from '../support/redis-server.js';
import { scanKeys } from '../support/scan.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

/** How many keys match `match`, on every master. */
const countKeys = async (redis: RedisClient, match: string) => (await scanKeys(redis, match)).length;

const entries = (namespace: string, count: number, tag: string) =>
  Array.from({ length: count }, (_, i) => ({ key: `${namespace}:${i}`, value: { i }, options: { tags: [tag], ttl: '10m' as const } }));

describe.each(topologies)('bulk invalidation at scale on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let a: INestApplicationContext;
  let b: INestApplicationContext;
  let cacheA: CacheService;
  let cacheB: CacheService;
  let redis: RedisClient;
  beforeAll(async () => {
    [a, b] = await Promise.all([1, 2].map(() => startContext({ connection: connection(), keyPrefix, cache: { l1: { ttl: '1m' } } })));
    [cacheA, cacheB] = [a.get(CacheService), b.get(CacheService)];
    redis = a.get(RedisConnections).get();
  }, 120_000);
  afterAll(() => Promise.all([a?.close(), b?.close()]));

  const entryPattern = (namespace: string) => `${keyPrefix}{c:${namespace}:*}`;

  it('invalidates a tag of 100,000 entries with the default commandTimeout: the count, progress, nothing left in Redis or in either instance L1', async () => {
    await cacheA.warm(entries('big', 100_000, 'big-tag'));
    // Both instances hold some entries in L1.
    const sample = Array.from({ length: 50 }, (_, i) => `big:${i * 997}`);
    await expect.poll(async () => (await cacheB.get(sample[0], { l1: true }), cacheB.stats().l1.hits)).toBeGreaterThan(0);
    for (const key of sample) await Promise.all([cacheA.get(key, { l1: true }), cacheB.get(key, { l1: true })]);
    const progress: number[] = [];
    expect(await cacheA.invalidateTags(['big-tag'], { onProgress: (deleted) => progress.push(deleted) })).toBe(100_000);
    expect(progress.length).toBeGreaterThanOrEqual(100);
    expect(progress.at(-1)).toBe(100_000);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    expect(await countKeys(redis, entryPattern('big'))).toBe(0);
    // The tag, its snapshot and their registry are gone.
    expect(await countKeys(redis, `${a.get(RedisKeys).tagged(['ct', 'big-tag'])}*`)).toBe(0);
    for (const key of sample) expect(await cacheA.get(key, { l1: true })).toBeUndefined();
    await expect
      .poll(async () => (await Promise.all(sample.map((key) => cacheB.get(key, { l1: true })))).filter((value) => value !== undefined))
      .toEqual([]);
  }, 120_000);

  it('can be aborted between chunks, and a second call finishes', async () => {
    await cacheA.warm(entries('stop', 5_000, 'stop-tag'));
    const controller = new AbortController();
    const aborted = await cacheA
      .invalidateTags(['stop-tag'], { signal: controller.signal, onProgress: (deleted) => deleted >= 1_000 && controller.abort() })
      .catch((error: unknown) => error);
    expect(aborted).toBeInstanceOf(InvalidationAbortedError);
    const { deleted } = aborted as InvalidationAbortedError;
    expect(deleted).toBeGreaterThanOrEqual(1_000);
    expect(deleted).toBeLessThan(5_000);
    expect((aborted as Error).message).toBe(
      `The cache invalidation of tags "stop-tag" was aborted after deleting ${deleted} entries; call it again to finish it.`,
    );
    // A signal aborted already: nothing is deleted, nothing is asked of Redis.
    const before = await countKeys(redis, entryPattern('stop'));
    const early = await cacheA.deleteByPattern('stop:*', { signal: AbortSignal.abort() }).catch((error: unknown) => error);
    expect(early).toBeInstanceOf(InvalidationAbortedError);
    expect((early as InvalidationAbortedError).target).toBe('pattern "stop:*"');
    expect((early as InvalidationAbortedError).deleted).toBe(0);
    expect(await countKeys(redis, entryPattern('stop'))).toBe(before);
    expect(before).toBe(5_000 - deleted);
    expect(await cacheA.invalidateTags(['stop-tag'])).toBe(5_000 - deleted);
    expect(await cacheA.invalidateTags([])).toBe(0);
    expect(await countKeys(redis, entryPattern('stop'))).toBe(0);
  });

  it('never lets a load that began before the invalidation store its result, on any instance', async () => {
    await cacheA.warm(entries('race', 2_000, 'race-tag'));
    // Loads on B of entries the tag holds, and of entries that will only join it when they store.
    // A loader runs once its load has missed (and read the epoch): all 40 have before the invalidation.
    let started = 0;
    const slowLoader = (value: string) => async () => {
      started++;
      await sleep(300);
      return value;
    };
    const inFlight = [
      ...Array.from({ length: 20 }, (_, i) => cacheB.getOrSet(`race-missing:${i}`, slowLoader('stale'), { tags: ['race-tag'] })),
      ...Array.from({ length: 20 }, (_, i) => cacheB.getOrSet(`race-other:${i}`, slowLoader('stale'))),
    ];
    await expect.poll(() => started).toBe(40);
    expect(await cacheA.invalidateTags(['race-tag'])).toBe(2_000);
    expect(new Set(await Promise.all(inFlight))).toEqual(new Set(['stale']));
    // Neither those loads' results nor anything of the tag is cached: the next readers load afresh.
    for (let i = 0; i < 20; i++) {
      expect(await cacheA.get(`race-missing:${i}`)).toBeUndefined();
      expect(await cacheA.get(`race-other:${i}`)).toBeUndefined();
    }
    expect(await cacheB.getOrSet('race-missing:0', async () => 'fresh', { tags: ['race-tag'] })).toBe('fresh');
    expect(await cacheA.get('race-missing:0')).toBe('fresh');
  });

  it('keeps the fence when the epoch is lost meanwhile (a failover or an eviction): the load does not store', async () => {
    const epochKeys = () => scanKeys(redis, `${a.get(RedisKeys).prefix}c-epoch*`);
    const loseEpochs = async () => {
      const lost = await epochKeys();
      // A Cluster has one per slot: deleted a thousand at a time.
      for (let from = 0; from < lost.length; from += 1_000) await Promise.all(lost.slice(from, from + 1_000).map((key) => redis.del(key)));
    };
    await cacheA.warm(entries('lost', 10, 'lost-tag'));
    await loseEpochs();
    // The load misses while its slot has no epoch, the invalidation moves it, then it is lost again.
    let missed = false;
    let finish: (value: string) => void = () => undefined;
    const load = cacheB.getOrSet('lost-epoch:0', () => {
      missed = true;
      return new Promise<string>((resolve) => (finish = resolve));
    });
    await expect.poll(() => missed).toBe(true);
    expect((await epochKeys()).length).toBeGreaterThan(0);
    expect(await cacheA.invalidateTags(['lost-tag'])).toBe(10);
    await loseEpochs();
    finish('stale');
    expect(await load).toBe('stale');
    expect(await cacheA.get('lost-epoch:0')).toBeUndefined();
    // Loads that begin afterwards store again.
    expect(await cacheB.getOrSet('lost-epoch:0', async () => 'fresh')).toBe('fresh');
    expect(await cacheA.get('lost-epoch:0')).toBe('fresh');
  });

  it("prunes a tag's expired members a thousand a write, never all at once", async () => {
    const tagKey = a.get(RedisKeys).tagged(['ct', 'old-tag']);
    // 2,501 members that expired an hour ago.
    const expired = Date.now() - 3_600_000;
    for (let from = 0; from < 2_501; from += 500)
      await redis.zadd(tagKey, ...Array.from({ length: Math.min(500, 2_501 - from) }, (_, i) => [expired, `gone:${from + i}`]).flat());
    const sizes: number[] = [];
    for (let write = 0; write < 3; write++) {
      await cacheA.set(`old:${write}`, write, { tags: ['old-tag'], ttl: '10m' });
      sizes.push(await redis.zcard(tagKey));
    }
    // Each write adds its entry and drops at most 1,000 of the expired.
    expect(sizes).toEqual([1_502, 503, 3]);
    // The set lives as long as its longest-lived member (10 minutes, give or take the 10% jitter).
    const [, longestLived] = await redis.zrange(tagKey, '-1', '-1', 'WITHSCORES');
    const expiresAt = Number(await redis.call('PEXPIRETIME', tagKey));
    expect(expiresAt).toBeGreaterThanOrEqual(Number(longestLived) - 50);
    expect(Number(longestLived) - Date.now()).toBeGreaterThan(0.9 * 600_000 - 60_000);
    expect(await cacheA.invalidateTags(['old-tag'])).toBe(3);
  });

  it('deletes by pattern and clears a namespace in chunks, every master at once, with the count', async () => {
    await cacheA.warm(entries('pat', 3_000, 'pat-tag'));
    await cacheA.warm(entries('keep', 500, 'keep-tag'));
    const progress: number[] = [];
    expect(await cacheA.deleteByPattern('pat:1*', { onProgress: (deleted) => progress.push(deleted) })).toBe(1_111);
    expect(progress.at(-1)).toBe(1_111);
    expect(await cacheA.clear('pat:')).toBe(3_000 - 1_111);
    expect(await countKeys(redis, entryPattern('pat'))).toBe(0);
    expect(await countKeys(redis, entryPattern('keep'))).toBe(500);
  });
});

// Pausing every master would stall the suites that share the test servers: this one has its own.
describe.each(ownRedisSetups([]))('bulk invalidation cut short on $topology', ({ start }) => {
  let own: OwnRedis;
  let app: INestApplicationContext;
  let cache: CacheService;
  let redis: RedisClient;
  const keyPrefix = uniquePrefix();
  const entryPattern = (namespace: string) => `${keyPrefix}{c:${namespace}:*}`;
  beforeAll(async () => {
    own = await start();
    app = await startContext({ connection: own.connection, keyPrefix });
    cache = app.get(CacheService);
    redis = app.get(RedisConnections).get();
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await own?.destroy();
  });

  it('stops part-way when Redis stops answering: InvalidationIncompleteError says how many, and a retry finishes', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await cache.warm(entries('cut', 20_000, 'cut-tag'));
      const masters = isCluster(redis) ? redis.nodes('master').map((node) => node.options.port!) : [(redis as Redis).options.port!];
      let paused = false;
      const first = await cache
        .invalidateTags(['cut-tag'], {
          onProgress: (deleted) => {
            if (paused || deleted < 3_000) return;
            paused = true;
            // Every master stops answering for longer than the commandTimeout (1s).
            for (const port of masters) void command(port, 'CLIENT PAUSE 2500 ALL');
          },
        })
        .catch((error: unknown) => error);
      expect(first).toBeInstanceOf(InvalidationIncompleteError);
      const { deleted } = first as InvalidationIncompleteError;
      expect(deleted).toBeGreaterThanOrEqual(3_000);
      expect(deleted).toBeLessThan(20_000);
      expect((first as InvalidationIncompleteError).getStatus()).toBe(503);
      expect((first as InvalidationIncompleteError).target).toBe('tags "cut-tag"');
      expect((first as Error).message).toContain(`the invalidation of tags "cut-tag" stopped after deleting ${deleted} entries`);
      // The retry finishes: the entries the tag still lists (what a chunk in flight deleted may go uncounted).
      const retried = await retry(() => cache.invalidateTags(['cut-tag']));
      expect(deleted + retried).toBeLessThanOrEqual(20_000);
      expect(deleted + retried).toBeGreaterThan(20_000 - 2_000);
      expect(await countKeys(redis, entryPattern('cut'))).toBe(0);
      expect(await countKeys(redis, `${app.get(RedisKeys).tagged(['ct', 'cut-tag'])}*`)).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
  }, 120_000);
});

describe('deleteByPattern over a keyspace of a million keys', () => {
  const own = ownRedisServer();

  it('finds and deletes its 2,000 entries among 1,000,000 other keys, within the default commandTimeout', async () => {
    const app = await startContext({ connection: own.server.address });
    const cache = app.get(CacheService);
    const redis = app.get(RedisConnections).get() as Redis;
    // A client of its own without a commandTimeout: DEBUG POPULATE of a million keys takes a while.
    const admin = new IORedis(own.server.address);
    await admin.call('DEBUG', 'POPULATE', '1000000', 'other');
    await admin.quit();
    await cache.warm(entries('ns', 2_000, 'ns-tag'));
    let steps = 0;
    expect(await cache.clear('ns:', { onProgress: () => steps++ })).toBe(2_000);
    // About a thousand keys looked at a step: the million are walked, not read at once.
    expect(steps).toBeGreaterThan(900);
    expect(await redis.dbsize()).toBeGreaterThanOrEqual(1_000_000);
    expect(await countKeys(redis, `${app.get(RedisKeys).prefix}{c:ns:*}`)).toBe(0);
    await app.close();
  }, 120_000);
});

/** Calls `work` until it succeeds (the connection comes back), for at most ten seconds. */
async function retry<T>(work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}
