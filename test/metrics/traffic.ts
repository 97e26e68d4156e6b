import type { INestApplicationContext } from '@nestjs/common';
import { expect } from 'vitest';
import { CacheService, LockNotAcquiredError, LockService, RateLimitService, type Lock } from '../../lib/index.js';

/**
 * The traffic both exporters' specs report on, with the same checks of what the features answered.
 * Cache: a Redis hit, an L1 hit, a miss loaded, a miss whose loader fails.
 */
export async function cacheTraffic(app: INestApplicationContext): Promise<void> {
  const cache = app.get(CacheService);
  const never = () => Promise.reject(new Error('not called: a hit'));
  await cache.set('m:a', 1);
  expect(await cache.getOrSet('m:a', never)).toBe(1); // Redis hit (set does not fill L1)
  // L1 serves once its invalidation bus is subscribed.
  await expect.poll(async () => (await cache.getOrSet('m:a', never, { l1: true }), cache.stats().l1.hits)).toBeGreaterThan(0);
  expect(await cache.getOrSet('m:b', () => 'loaded')).toBe('loaded'); // Redis miss, loaded
  await expect(cache.getOrSet('m:c', () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
}

/** Rate limiting: three calls of one caller against a policy `policy` of 2 a minute; two allowed, one limited. */
export async function rateLimitTraffic(app: INestApplicationContext, policy: string, caller: string): Promise<void> {
  const limits = app.get(RateLimitService);
  const decisions = [];
  for (let call = 0; call < 3; call++) decisions.push(await limits.consume(caller, { name: policy, limit: 2, window: '1m' }));
  expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, false]);
}

/** Locks: `key` acquired (and held: the lock is answered), then refused as held, then after a wait of 60 ms. */
export async function lockTraffic(app: INestApplicationContext, key: string): Promise<Lock> {
  const locks = app.get(LockService);
  const lock = await locks.acquire(key);
  await expect(locks.acquire(key)).rejects.toBeInstanceOf(LockNotAcquiredError);
  await expect(locks.acquire(key, { wait: '60ms' })).rejects.toMatchObject({ reason: 'timeout' });
  return lock;
}
