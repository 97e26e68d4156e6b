import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, InvalidOptionError, RedisConnections, RedisKeys } from '../../lib/index.js';
import { encodeCacheKey } from '../../lib/cache/cache-key.js';
import { startContext, topologies } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(topologies)('Cache entries that never expire, exact TTLs, getEntry and scan on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let cache: CacheService;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), cache: { ttl: '10s', jitter: 0.5, l1: { maxEntries: 100 } } });
    cache = app.get(CacheService);
  });
  afterAll(() => app.close());

  const redis = () => app.get(RedisConnections).get();
  const redisKey = (key: string) => `${app.get(RedisKeys).prefix}{c:${encodeCacheKey(key)}}`;
  const tagKey = (tag: string) => app.get(RedisKeys).tagged(['ct', tag]);

  it('keeps an entry written with ttl: Infinity without expiry, fresh for ever, by set, warm and getOrSet', async () => {
    await cache.set('forever:set', { a: 1 }, { ttl: Infinity });
    await cache.warm([{ key: 'forever:warm', value: 2, options: { ttl: Infinity } }]);
    expect(await cache.getOrSet('forever:load', () => 3, { ttl: Infinity })).toBe(3);
    await cache.set('forever:null', null, { nullTtl: Infinity });
    for (const key of ['forever:set', 'forever:warm', 'forever:load', 'forever:null']) expect(await redis().pttl(redisKey(key))).toBe(-1);
    expect(await cache.getEntry('forever:set')).toEqual({ value: { a: 1 }, freshUntil: Infinity });
    expect(await cache.getEntry('forever:null')).toEqual({ value: null, freshUntil: Infinity });
    // A hit, not a stale value: the loader is not called again.
    expect(await cache.lookup('forever:load', () => 4)).toEqual({ value: 3, status: 'hit' });
    // Through L1 too.
    await cache.set('forever:l1', 'local', { ttl: Infinity, l1: true });
    expect(await cache.getEntry('forever:l1', { l1: true })).toEqual({ value: 'local', freshUntil: Infinity });
  });

  it('gives a finite TTL again to an entry that never expired when it is written with one', async () => {
    await cache.set('forever:then-not', 1, { ttl: Infinity });
    await cache.set('forever:then-not', 2, { ttl: 5_000, jitter: 0 });
    const pttl = await redis().pttl(redisKey('forever:then-not'));
    expect(pttl).toBeGreaterThan(4_000);
    expect(pttl).toBeLessThanOrEqual(5_000);
  });

  it('keeps a tag set alive while it holds an entry that never expires, and invalidates it', async () => {
    await cache.set('tagged:forever', 1, { ttl: Infinity, tags: ['eternal'] });
    await cache.set('tagged:brief', 2, { ttl: 200, jitter: 0, tags: ['eternal'] });
    expect(await redis().pttl(tagKey('eternal'))).toBe(-1);
    expect(await redis().zscore(tagKey('eternal'), redisKey('tagged:forever'))).toBe('inf');
    await sleep(300);
    // The next write prunes the expired member and leaves the one that never expires.
    await cache.set('tagged:other', 3, { ttl: '1m', tags: ['eternal'] });
    expect(await redis().pttl(tagKey('eternal'))).toBe(-1);
    expect(await redis().zrange(tagKey('eternal'), '0', '-1')).toEqual([redisKey('tagged:other'), redisKey('tagged:forever')]);
    expect(await cache.invalidateTags(['eternal'])).toBe(2);
    expect(await cache.get('tagged:forever')).toBeUndefined();
  });

  it('writes exactly the TTL with jitter: 0, and spreads it by the module jitter otherwise', async () => {
    await cache.set('exact', 'x', { ttl: 4_000, jitter: 0 });
    const pttl = await redis().pttl(redisKey('exact'));
    expect(pttl).toBeGreaterThan(3_900);
    expect(pttl).toBeLessThanOrEqual(4_000);
    const entry = await cache.getEntry('exact');
    expect(entry!.freshUntil - Date.now()).toBeLessThanOrEqual(4_000);
    expect(entry!.freshUntil - Date.now()).toBeGreaterThan(3_800);

    const spread = new Set<number>();
    for (let i = 0; i < 10; i++) {
      await cache.set(`spread:${i}`, i, { ttl: 10_000 });
      spread.add(Math.round((await redis().pttl(redisKey(`spread:${i}`))) / 1_000));
    }
    // ±50% of 10s: ten entries do not all land within the same second.
    expect(spread.size).toBeGreaterThan(1);
  });

  it('refuses a jitter outside [0, 1), naming the option', async () => {
    await expect(cache.set('bad-jitter', 1, { jitter: 1 })).rejects.toThrow(InvalidOptionError);
    await expect(cache.set('bad-jitter', 1, { jitter: -0.1 })).rejects.toThrow(
      /Invalid option "jitter": expected a fraction from 0 to below 1/,
    );
  });

  it('getEntry tells a cached undefined from a miss, and returns a stale entry with its past freshUntil', async () => {
    await cache.set('undefined-value', undefined, { cacheNull: true, nullTtl: '10s' });
    expect(await cache.get('undefined-value')).toBeUndefined();
    expect(await cache.getEntry('undefined-value')).toMatchObject({ value: undefined });
    expect(await cache.getEntry('never-written')).toBeUndefined();

    await cache.set('stale-entry', 'old', { ttl: 100, jitter: 0, staleWhileRevalidate: '10s' });
    await sleep(150);
    const stale = await cache.getEntry('stale-entry');
    expect(stale?.value).toBe('old');
    expect(stale!.freshUntil).toBeLessThan(Date.now());
  });

  it('scan yields every matching key once it exists, decoded, in steps of at most a thousand, on every master', async () => {
    const keys = Array.from({ length: 2_500 }, (_, i) => `scan:${i % 3 === 0 ? 'odd key {with} *glob* 100%' : 'plain'}:${i}`);
    await cache.warm(keys.map((key) => ({ key, value: 1 })));
    await cache.set('scanned-not', 1);
    const seen = new Set<string>();
    let steps = 0;
    for await (const step of cache.scan('scan:*')) {
      steps++;
      expect(step.length).toBeGreaterThan(0);
      expect(step.length).toBeLessThanOrEqual(1_100);
      for (const key of step) seen.add(key);
    }
    expect(steps).toBeGreaterThanOrEqual(3);
    expect([...seen].sort()).toEqual([...keys].sort());

    const literal = [];
    for await (const step of cache.scan('scan:odd key {with} \\*glob\\* 100%:3')) literal.push(...step);
    expect(literal).toEqual(['scan:odd key {with} *glob* 100%:3']);
  });
});
