import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CacheService, InvalidOptionError, RedisConnections, RedisKeys } from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { waitFor } from '../support/redis-server.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

/** Waits until the instance keeps L1 entries (it listens for invalidations). */
async function l1Ready(cache: CacheService, key: string): Promise<void> {
  await expect
    .poll(async () => (await cache.set(key, 'ready', { l1: true }), await cache.get(key, { l1: true }), cache.stats().l1.hits))
    .toBeGreaterThan(0);
}

describe.each(topologies)('L1 invalidation over a stream on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let a: INestApplicationContext;
  let b: INestApplicationContext;
  beforeAll(async () => {
    [a, b] = await Promise.all(
      [1, 2].map(() => startContext({ connection: connection(), keyPrefix, cache: { l1: { ttl: '1m' }, invalidation: 'stream' } })),
    );
  });
  afterAll(() => Promise.all([a.close(), b.close()]));

  it("drops the other instance's L1 copy on writes and deletes, and writes them to the stream", async () => {
    const [cacheA, cacheB] = [a.get(CacheService), b.get(CacheService)];
    await l1Ready(cacheB, 'ready-b');
    await cacheA.set('item', 'v1', { l1: true });
    // B holds it in L1 once no invalidation raced its read.
    await expect
      .poll(async () => {
        const hits = cacheB.stats().l1.hits;
        const value = await cacheB.get('item', { l1: true });
        return [value, cacheB.stats().l1.hits - hits];
      })
      .toEqual(['v1', 1]);

    await cacheA.set('item', 'v2', { l1: true });
    await expect.poll(() => cacheB.get('item', { l1: true })).toBe('v2');
    await cacheA.delete('item');
    await expect.poll(() => cacheB.get('item', { l1: true })).toBeUndefined();
    const streamKey = a.get(RedisKeys).tagged('cache-invalidations');
    expect(await a.get(RedisConnections).get().xlen(streamKey)).toBeGreaterThanOrEqual(3);
  });
});

describe('a stream-invalidated L1 when Redis restarts', () => {
  const own = ownRedisServer();

  it('clears L1, since the stream (and what it held) is gone', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({
      connection: own.server.address,
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
      cache: { invalidation: 'stream' },
    });
    const cache = app.get(CacheService);
    await l1Ready(cache, 'warm');
    await cache.set('kept-locally', 'x', { l1: true });
    await own.server.stop();
    expect(await cache.get('kept-locally', { l1: true })).toBe('x'); // L1 still serves during the outage
    await own.server.start();
    await waitFor(async () => (await cache.get('kept-locally', { l1: true })) === undefined, 'L1 to be cleared', 15_000);
    await app.close();
    vi.restoreAllMocks();
  }, 30_000);

  it('started while Redis is down, keeps L1 off and retries, then turns it on once it can listen', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    await own.server.stop();
    const app = await startContext({
      connection: own.server.address,
      connectTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
      cache: { invalidation: 'stream' },
    });
    const cache = app.get(CacheService);
    const lines = (spy: typeof warn) => spy.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('L1'));
    await expect
      .poll(() => lines(warn))
      .toEqual([
        expect.stringMatching(
          /^L1 stays off until the cache can listen for invalidations \(no connection to the server\); retrying with backoff$/,
        ),
      ]);
    await own.server.start();
    await expect.poll(() => lines(log), { timeout: 15_000 }).toEqual(['L1 is on: the cache listens for invalidations']);
    await l1Ready(cache, 'after-outage');
    // Logged once, however many attempts the outage took.
    expect(lines(warn)).toHaveLength(1);
    await app.close();
    vi.restoreAllMocks();
  }, 30_000);
});

describe('cache.invalidation option', () => {
  it('accepts true, false, "pubsub" and "stream" only', async () => {
    const error = await startContext({ connection: topologies[0].connection(), cache: { invalidation: 'kafka' as never } }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message).toBe(
      'Invalid option "cache.invalidation": expected true, false, \'pubsub\' or \'stream\', got "kafka".',
    );
  });
});
