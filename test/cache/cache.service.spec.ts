import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, CodecError, escapeCachePattern, RedisConnections, RedisKeys } from '../../lib/index.js';
import { encodeCacheKey } from '../../lib/cache/cache-key.js';
import { startContext, topologies } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(topologies)('CacheService on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let cache: CacheService;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), cache: { ttl: '10s' } });
    cache = app.get(CacheService);
  });
  afterAll(() => app.close());

  const redisKey = (key: string) => `${app.get(RedisKeys).prefix}{c:${encodeCacheKey(key)}}`;
  const pttl = (key: string) => app.get(RedisConnections).get().pttl(redisKey(key));

  it('calls the loader on a miss, then serves the stored value with its types', async () => {
    let calls = 0;
    const value = { at: new Date(1_000), tags: new Set(['a']), big: 10n ** 20n, none: undefined };
    const loader = async () => {
      calls++;
      return value;
    };
    expect(await cache.getOrSet('types', loader)).toStrictEqual(value);
    expect(await cache.getOrSet('types', loader)).toStrictEqual(value);
    expect(await cache.get('types')).toStrictEqual(value);
    expect(calls).toBe(1);
  });

  it('treats 0, false and "" as values, and null as a miss unless cacheNull', async () => {
    for (const [key, value] of [
      ['zero', 0],
      ['false', false],
      ['empty', ''],
    ] as const) {
      let calls = 0;
      await cache.getOrSet(key, () => (calls++, value));
      expect(await cache.getOrSet(key, () => (calls++, 'other'))).toBe(value);
      expect(calls).toBe(1);
    }
    let nullCalls = 0;
    await cache.getOrSet('null-plain', () => (nullCalls++, null));
    await cache.getOrSet('null-plain', () => (nullCalls++, null));
    expect(nullCalls).toBe(2);
    expect(await cache.get('null-plain')).toBeUndefined();

    await cache.getOrSet('null-cached', () => null, { cacheNull: true, nullTtl: '5s' });
    expect(await cache.get('null-cached')).toBeNull();
    expect(await cache.getOrSet('null-cached', () => 'loaded', { cacheNull: true })).toBeNull();
    const nullPttl = await pttl('null-cached');
    expect(nullPttl).toBeGreaterThan(4_000);
    expect(nullPttl).toBeLessThanOrEqual(5_500);
  });

  it('calls the loader once for 200 concurrent misses in one process', async () => {
    let calls = 0;
    const before = cache.stats().coalesced;
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        cache.getOrSet('crowd', async () => {
          calls++;
          await sleep(50);
          return { n: 1 };
        }),
      ),
    );
    expect(calls).toBe(1);
    expect(results.every((result) => result.n === 1)).toBe(true);
    expect(cache.stats().coalesced - before).toBe(199);
    // Each waiter has its own copy.
    results[0].n = 2;
    expect(results[1].n).toBe(1);
  });

  it('spreads TTLs by the jitter, and keeps entries for ttl + staleWhileRevalidate', async () => {
    const ttls = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await cache.set(`jitter-${i}`, i, { ttl: '10s' });
        return pttl(`jitter-${i}`);
      }),
    );
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(8_900);
    expect(Math.max(...ttls)).toBeLessThanOrEqual(11_000);
    expect(new Set(ttls).size).toBeGreaterThan(5);
    await cache.set('swr-ttl', 1, { ttl: '10s', staleWhileRevalidate: '20s' });
    const withStale = await pttl('swr-ttl');
    expect(withStale).toBeGreaterThan(28_900);
    expect(withStale).toBeLessThanOrEqual(31_000);
  });

  it('serves a stale value while one background refresh runs', async () => {
    let version = 0;
    const loader = async () => {
      version++;
      await sleep(100);
      return `v${version}`;
    };
    expect(await cache.getOrSet('swr', loader, { ttl: 100, staleWhileRevalidate: '10s' })).toBe('v1');
    await sleep(150);
    const staleBefore = cache.stats().staleServed;
    const during = await Promise.all(
      Array.from({ length: 20 }, () => cache.getOrSet('swr', loader, { ttl: 100, staleWhileRevalidate: '10s' })),
    );
    expect(new Set(during)).toEqual(new Set(['v1']));
    expect(cache.stats().staleServed - staleBefore).toBe(20);
    await expect.poll(() => cache.get('swr')).toBe('v2');
    expect(version).toBe(2); // one background refresh for the twenty stale reads
  });

  it('keeps serving the stale value when the refresh fails, and retries only after a backoff', async () => {
    let calls = 0;
    await cache.getOrSet('fail-safe', () => 'good', { ttl: 50, staleWhileRevalidate: '10s' });
    await sleep(80);
    const failing = () => {
      calls++;
      throw new Error('source down');
    };
    expect(await cache.getOrSet('fail-safe', failing, { ttl: 50, staleWhileRevalidate: '10s' })).toBe('good');
    await expect.poll(() => calls).toBe(1);
    for (let i = 0; i < 5; i++) expect(await cache.getOrSet('fail-safe', failing, { ttl: 50, staleWhileRevalidate: '10s' })).toBe('good');
    await sleep(50);
    expect(calls).toBe(1);
    // After the backoff (1s after a first failure), a stale read tries the refresh again.
    await sleep(1_000);
    expect(await cache.getOrSet('fail-safe', failing, { ttl: 50, staleWhileRevalidate: '10s' })).toBe('good');
    await expect.poll(() => calls).toBe(2);
  });

  it('rejects the loader error to every waiter when there is no stale value, and stores nothing', async () => {
    let calls = 0;
    const failing = async () => {
      calls++;
      await sleep(20);
      throw new Error('boom');
    };
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => cache.getOrSet('fails', failing)));
    expect(results.map((result) => result.status)).toEqual(Array(5).fill('rejected'));
    expect(calls).toBe(1);
    expect(await cache.getOrSet('fails', () => 'recovered')).toBe('recovered');
  });

  it('set, get and delete read their own writes', async () => {
    await cache.set('ryw', 'one');
    expect(await cache.get('ryw')).toBe('one');
    await cache.set('ryw', 'two');
    expect(await cache.get('ryw')).toBe('two');
    expect(await cache.delete('ryw', 'never-set')).toBe(1);
    expect(await cache.get('ryw')).toBeUndefined();
  });

  it('never writes back a value loaded before a delete or a set', async () => {
    const slowLoad = (value: string) => async () => {
      await sleep(150);
      return value;
    };
    const loading = cache.getOrSet('write-back', slowLoad('old'));
    await sleep(30);
    await cache.delete('write-back');
    expect(await loading).toBe('old'); // the caller gets its result...
    expect(await cache.get('write-back')).toBeUndefined(); // ...but it is not stored

    const loadingAgain = cache.getOrSet('write-back', slowLoad('old'));
    await sleep(30);
    await cache.set('write-back', 'new');
    await loadingAgain;
    expect(await cache.get('write-back')).toBe('new');
  });

  it('never writes back even when the generation expired or was evicted meanwhile', async () => {
    await cache.delete('aba'); // the key now has a generation
    const loading = cache.getOrSet('aba', async () => {
      await sleep(150);
      return 'old';
    });
    await sleep(30);
    await cache.delete('aba');
    await app
      .get(RedisConnections)
      .get()
      .del(`${redisKey('aba')}:g`); // as if evicted
    await cache.delete('aba');
    await loading;
    expect(await cache.get('aba')).toBeUndefined();
  });

  it('a load in flight during a tag, pattern or clear invalidation does not store its result', async () => {
    const slow = (value: string) => async () => {
      await sleep(150);
      return value;
    };
    for (const invalidate of [
      () => cache.invalidateTags(['bulk-tag']),
      () => cache.deleteByPattern('bulk:*'),
      () => cache.clear('bulk:'),
    ]) {
      const loading = cache.getOrSet('bulk:entry', slow('old'), { tags: ['bulk-tag'] });
      await sleep(30);
      await invalidate();
      expect(await loading).toBe('old');
      expect(await cache.get('bulk:entry')).toBeUndefined();
    }
    expect(await cache.getOrSet('bulk:entry', slow('new'), { tags: ['bulk-tag'] })).toBe('new');
    expect(await cache.get('bulk:entry')).toBe('new');
  });

  it('invalidates by tag, including tags computed from the value', async () => {
    await cache.getOrSet('p1', () => ({ brand: 'acme' }), { tags: (value) => ['products', `brand:${value.brand}`] });
    await cache.set('p2', { brand: 'other' }, { tags: ['products', 'brand:other'] });
    await cache.set('untagged', 1);
    expect(await cache.invalidateTags(['brand:acme'])).toBe(1);
    expect([await cache.get('p1'), await cache.get('p2')]).toEqual([undefined, { brand: 'other' }]);
    expect(await cache.invalidateTags(['products'])).toBe(1);
    expect(await cache.get('p2')).toBeUndefined();
    expect(await cache.get('untagged')).toBe(1);
  });

  it('deletes by pattern with SCAN on every master, and user input cannot widen the pattern', async () => {
    const entries = ['user:1:profile', 'user:1:orders', 'user:2:profile', 'user:*:profile', 'admin:1'];
    for (const key of entries) await cache.set(key, key);
    expect(await cache.deleteByPattern(`user:${escapeCachePattern('*')}:*`)).toBe(1);
    expect(await cache.get('user:*:profile')).toBeUndefined();
    expect(await cache.get('user:2:profile')).toBe('user:2:profile');
    expect(await cache.deleteByPattern('user:1:*')).toBe(2);
    expect(await cache.get('user:2:profile')).toBe('user:2:profile');
    expect(await cache.clear('user:')).toBe(1);
    expect(await cache.get('admin:1')).toBe('admin:1');
  });

  it('keeps keys with braces, globs and % inside their own hash tag (the miss script runs on the cluster)', async () => {
    for (const key of ['a}b{c', 'x*y?[z]', '100%\\done', 'user:42:profile']) {
      expect(await cache.getOrSet(key, () => key)).toBe(key);
      expect(await cache.get(key)).toBe(key);
    }
    expect(redisKey('user:42:profile')).toMatch(/\{c:user:42:profile\}$/);
    // The space and line breaks are encoded too: 'a b' and 'a%20b' stay two entries.
    await cache.set('a b\r\n', 'spaced');
    await cache.set('a%20b%0D%0A', 'literal');
    expect([await cache.get('a b\r\n'), await cache.get('a%20b%0D%0A')]).toEqual(['spaced', 'literal']);
    expect(redisKey('a b\r\n')).toMatch(/\{c:a%20b%0D%0A\}$/);
    expect(await cache.deleteByPattern('a}*')).toBe(1);
    expect(await cache.get('x*y?[z]')).toBe('x*y?[z]');
  });

  it('warms many entries at once', async () => {
    await cache.warm(Array.from({ length: 50 }, (_, i) => ({ key: `warm:${i}`, value: i })));
    expect(await Promise.all(Array.from({ length: 50 }, (_, i) => cache.get(`warm:${i}`)))).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  it('rejects a value it cannot store with an error naming the key, and bad keys and options', async () => {
    const error = await cache.getOrSet('bad-value', () => ({ run: () => 1 })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CodecError);
    expect((error as CodecError).key).toBe(redisKey('bad-value'));
    expect(await cache.getOrSet('bad-value', () => 'fine')).toBe('fine'); // the lock was released
    await expect(cache.getOrSet('', () => 1)).rejects.toThrow('Invalid option "key": expected a non-empty string, got "".');
    await expect(cache.getOrSet('user\ud800', () => 1)).rejects.toThrow(
      'Invalid option "key": expected well-formed Unicode text, got a string with a lone surrogate (not valid UTF-16).',
    );
    await expect(cache.set('k', 1, { tags: ['t\udc00'] })).rejects.toMatchObject({ name: 'MalformedTextError', option: 'tags' });
    await expect(cache.set('k', 1, { ttl: '1 minute' as never })).rejects.toThrow(/Invalid option "ttl"/);
  });
});
