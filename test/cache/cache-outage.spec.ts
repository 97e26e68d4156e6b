import { Logger } from '@nestjs/common';
import { describe, expect, it, vi } from 'vitest';
import { CacheService } from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';

describe('the cache when Redis stops mid-test', () => {
  const own = ownRedisServer();

  it('calls loaders directly (fail-open), still serves L1, logs the outage once, and recovers', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const app = await startContext({
      connection: own.server.address,
      commandTimeout: '300ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
      cache: {},
    });
    const cache = app.get(CacheService);
    await expect
      .poll(async () => (await cache.set('local', 'l1 copy', { l1: true }), await cache.get('local', { l1: true }), cache.stats().l1.hits))
      .toBeGreaterThan(0);
    let loads = 0;
    const loader = async () => ++loads;
    await cache.getOrSet('remote', loader);

    await own.server.stop();
    expect(await cache.get('local', { l1: true })).toBe('l1 copy');
    const loadsBefore = loads;
    const during = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSet('remote', loader)));
    // Fail-open, and still one loader call for the ten concurrent callers.
    expect(during).toEqual(Array(10).fill(loadsBefore + 1));
    expect(loads).toBe(loadsBefore + 1);
    expect(await cache.get('remote')).toBeUndefined();
    expect(cache.stats().errors).toBeGreaterThan(0);
    await expect(cache.set('remote', 1)).rejects.toThrow();
    const outageWarnings = warn.mock.calls
      .map(([message]) => String(message))
      .filter((message) => message.startsWith('Redis connection "default" is unavailable to the cache ('));
    expect(outageWarnings).toHaveLength(1);

    await own.server.start();
    await waitFor(
      async () =>
        await cache.set('remote', 'fresh').then(
          () => true,
          () => false,
        ),
      'Redis to be back',
      10_000,
    );
    const loadsAfter = loads;
    expect(await cache.getOrSet('remote', loader)).toBe('fresh');
    expect(loads).toBe(loadsAfter);
    await app.close();
    vi.restoreAllMocks();
  }, 30_000);
});
