import { Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BloomFilterService, InvalidOptionError, RedisConnections, RedisKeys, RedisPatternsError } from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { bloomTargets, REDIS_BLOOM_MODULE, REDIS_BLOOM_SKIP_REASON } from './bloom-servers.js';

let filters = 0;
const fresh = () => `filter-${++filters}`;
const ids = (from: number, count: number, prefix = 'id') => Array.from({ length: count }, (_, i) => `${prefix}-${from + i}`);

describe.each(bloomTargets)('BloomFilter, $name', (target) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  let blooms: BloomFilterService;
  beforeAll(async () => {
    await target.start();
    apps = await Promise.all([1, 2].map(() => startContext({ connection: target.connection(), keyPrefix })));
    blooms = apps[0].get(BloomFilterService);
  }, 60_000);
  afterAll(async () => {
    await Promise.all((apps ?? []).map((app) => app.close()));
    await target.stop();
  });

  it("picks its backend with 'auto', and says which in info()", async () => {
    const filter = blooms.filter(fresh(), { capacity: 1000, errorRate: 0.01, startsEmpty: true });
    expect(await filter.add('a')).toBe(true);
    expect(await filter.add('a')).toBe(false);
    const info = await filter.info();
    expect(info).toMatchObject({ backend: target.backend, capacity: 1000, errorRate: 0.01, items: 1, built: true, overCapacity: false });
    // m = -n ln p / (ln 2)^2 = 9586 bits for the bitmap, allocated up to the highest bit set so
    // far; RedisBloom sizes its own.
    expect(info.sizeBytes).toBeGreaterThan(0);
    if (target.backend === 'bitmap') expect(info.sizeBytes).toBeLessThanOrEqual(Math.ceil(9586 / 8));
  });

  it('never gives a false negative over 100k items, across two instances', async () => {
    const name = fresh();
    const writer = blooms.filter(name, { capacity: 100_000, errorRate: 0.01, startsEmpty: true });
    const reader = apps[1].get(BloomFilterService).filter(name, { capacity: 100_000, errorRate: 0.01, startsEmpty: true });
    const items = ids(0, 100_000);
    const added = await writer.addMany(items);
    // Each new item (bar the rare one whose bits were all set already) reports new.
    expect(added.filter(Boolean).length).toBeGreaterThan(99_000);
    expect((await reader.mightContainMany(items)).every(Boolean)).toBe(true);
  }, 60_000);

  it('keeps the false-positive rate within three standard deviations of errorRate at capacity (100/p probes)', async () => {
    const capacity = 10_000;
    const errorRate = 0.01;
    const filter = blooms.filter(fresh(), { capacity, errorRate, startsEmpty: true });
    await filter.addMany(ids(0, capacity));
    const probes = 100 / errorRate;
    const falsePositives = (await filter.mightContainMany(ids(0, probes, 'absent'))).filter(Boolean).length;
    const sd = Math.sqrt(probes * errorRate * (1 - errorRate));
    expect(falsePositives).toBeLessThanOrEqual(probes * errorRate + 3 * sd);
  }, 60_000);

  it('takes batches larger than a script can unpack at once (batchSize 10000)', async () => {
    const filter = blooms.filter(fresh(), { capacity: 50_000, errorRate: 0.01, batchSize: 10_000, startsEmpty: true });
    const items = ids(0, 25_000, 'big');
    expect((await filter.addMany(items)).filter(Boolean).length).toBeGreaterThan(24_800);
    expect((await filter.mightContainMany(items)).every(Boolean)).toBe(true);
  }, 60_000);

  it('reports and logs (once) a filter past its capacity', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const filter = blooms.filter(fresh(), { capacity: 100, errorRate: 0.01, startsEmpty: true });
      await filter.addMany(ids(0, 150));
      expect(await filter.info()).toMatchObject({ items: expect.any(Number), overCapacity: true });
      await filter.add('one-more');
      await vi.waitFor(() =>
        expect(warn.mock.calls.filter(([message]) => String(message).includes('more than its capacity of 100'))).toHaveLength(1),
      );
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('rebuilds from a source and swaps at once, keeping what was added during the rebuild', async () => {
    const filter = blooms.filter(fresh(), { capacity: 10_000, errorRate: 0.001, batchSize: 100 });
    await filter.addMany(ids(0, 1000, 'removed'));
    const during = ids(0, 500, 'during');
    async function* source() {
      for (let batch = 0; batch < 20; batch++) {
        yield ids(batch * 100, 100, 'source');
        // Writes from another instance while the rebuild runs.
        await apps[1]
          .get(BloomFilterService)
          .filter(filter.name, { capacity: 10_000, errorRate: 0.001, batchSize: 100 })
          .addMany(during.slice(batch * 25, batch * 25 + 25));
      }
    }
    expect(await filter.rebuild(source())).toBe(true);
    expect((await filter.mightContainMany(ids(0, 2000, 'source'))).every(Boolean)).toBe(true);
    expect((await filter.mightContainMany(during)).every(Boolean)).toBe(true);
    // Items only in the old filter are gone (bar false positives at 0.1%).
    expect((await filter.mightContainMany(ids(0, 1000, 'removed'))).filter(Boolean).length).toBeLessThan(20);
    expect(await filter.info()).toMatchObject({ built: true, items: expect.any(Number) });
  }, 60_000);

  it('lets a later rebuild win over one it overtook, which then reports false', async () => {
    const filter = blooms.filter(fresh(), { capacity: 1000, errorRate: 0.01, batchSize: 10 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow() {
      yield ['slow-1'];
      await gate;
      yield ['slow-2'];
    }
    const overtaken = filter.rebuild(slow());
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await filter.rebuild(['fast-1', 'fast-2'])).toBe(true);
    release();
    expect(await overtaken).toBe(false);
    expect(await filter.mightContainMany(['fast-1', 'fast-2'])).toEqual([true, true]);
  });

  it('lets everything through until built, unless it starts empty: ids that exist but were never added are not hidden', async () => {
    const filter = blooms.filter(fresh(), { capacity: 1000, errorRate: 0.001 });
    expect(await filter.add('added-before-the-build')).toBe(true);
    expect(await filter.lookup(['never-added'])).toEqual({ found: [true], built: false });
    expect(await filter.info()).toMatchObject({ built: false, items: 0 });
    expect(await filter.rebuild(['from-the-source'])).toBe(true);
    expect(await filter.lookup(['from-the-source', 'never-added'])).toEqual({ found: [true, false], built: true });
    // A Promise of the items, as `repository.allIds()` gives them.
    expect(await filter.rebuild(Promise.resolve(['from-a-promise']))).toBe(true);
    expect(await filter.lookup(['from-a-promise', 'from-the-source'])).toEqual({ found: [true, false], built: true });
  });

  it('lets everything through again when its data is gone (evicted or deleted), and after a flush reopens with what is stored', async () => {
    const name = fresh();
    const filter = blooms.filter(name, { capacity: 1000, errorRate: 0.001, startsEmpty: true });
    await filter.add('kept');
    const redis = apps[0].get(RedisConnections).get();
    const keys = apps[0].get(RedisKeys);
    await redis.del(keys.tagged(['bf', name], 'a'));
    expect(await filter.lookup(['absent'])).toEqual({ found: [true], built: false });
    // An add does not make a filter of the new items alone, which would hide the earlier ones.
    expect(await filter.add('after-the-loss')).toBe(true);
    expect(await filter.lookup(['kept'])).toEqual({ found: [true], built: false });
    // Redis lost everything; another instance, with other options, writes the metadata again.
    await redis.del(keys.tagged(['bf', name], 'meta'));
    const other = apps[1].get(BloomFilterService).filter(name, { capacity: 50, errorRate: 0.1, startsEmpty: true });
    expect(await other.add('after-the-flush')).toBe(true);
    // This instance notices the stored parameters changed, opens the filter again, and agrees.
    expect(await filter.add('also-after')).toBe(true);
    expect(await other.mightContainMany(['after-the-flush', 'also-after'])).toEqual([true, true]);
    expect(await filter.info()).toMatchObject({ capacity: 50, errorRate: 0.1 });
  });

  it('gives up the generation of a rebuild whose source fails, and shows a running rebuild to other instances', async () => {
    const filter = blooms.filter(fresh(), { capacity: 1000, errorRate: 0.01, batchSize: 10 });
    async function* failing() {
      yield ['one'];
      throw new Error('the database went away');
    }
    await expect(filter.rebuild(failing())).rejects.toThrow('the database went away');
    expect(await filter.status()).toEqual({ built: false, rebuilding: false });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow() {
      yield ['slow-1'];
      await gate;
    }
    const running = filter.rebuild(slow());
    await vi.waitFor(async () =>
      expect(
        await apps[1].get(BloomFilterService).filter(filter.name, { capacity: 1000, errorRate: 0.01, batchSize: 10 }).status(),
      ).toEqual({ built: false, rebuilding: true }),
    );
    release();
    expect(await running).toBe(true);
    expect(await filter.status()).toEqual({ built: true, rebuilding: false });
  });

  it('rejects bad items with errors naming them', async () => {
    const filter = blooms.filter(fresh(), { capacity: 100, errorRate: 0.01 });
    await expect(filter.add('')).rejects.toMatchObject({ name: 'InvalidOptionError', option: 'item' });
    await expect(filter.mightContain('x'.repeat(5000))).rejects.toMatchObject({ option: 'item' });
    await expect(filter.addMany('abc' as never)).rejects.toMatchObject({ option: 'items' });
    expect(await filter.mightContainMany([])).toEqual([]);
    // Hashed as UTF-8, a lone surrogate would be the same item as U+FFFD.
    await filter.add('id-\uFFFD');
    await expect(filter.add('id-\ud800')).rejects.toMatchObject({
      name: 'MalformedTextError',
      option: 'item',
      message: expect.stringContaining('well-formed Unicode'),
    });
    await expect(filter.mightContainMany(['ok', 'id-\udfff'])).rejects.toMatchObject({ option: 'item' });
    expect(() => blooms.filter('bf\ud800', { capacity: 100, errorRate: 0.01 })).toThrow(expect.objectContaining({ option: 'name' }));
  });

  it('keeps the stored parameters, with a warning, when opened again with other options', async () => {
    const name = fresh();
    await blooms.filter(name, { capacity: 1000, errorRate: 0.01, startsEmpty: true }).add('kept');
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const other = await startContext({ connection: target.connection(), keyPrefix });
      const reopened = other.get(BloomFilterService).filter(name, { capacity: 5000, errorRate: 0.001, startsEmpty: true });
      expect(await reopened.mightContain('kept')).toBe(true);
      expect(await reopened.info()).toMatchObject({ capacity: 1000, errorRate: 0.01 });
      expect(
        warn.mock.calls.some(([message]) =>
          String(message).includes(`Bloom filter "${name}" exists with { capacity: 1000, errorRate: 0.01`),
        ),
      ).toBe(true);
      await other.close();
    } finally {
      vi.restoreAllMocks();
    }
    expect(() => blooms.filter(name, { capacity: 2000, errorRate: 0.01, startsEmpty: true })).toThrow(InvalidOptionError);
  });
});

// Without the module, the RedisBloom runs of the suite above are reported as skipped, with why.
if (!REDIS_BLOOM_MODULE) {
  describe('BloomFilter, redisbloom on standalone and cluster', () => {
    it('runs the suite above on RedisBloom', (context) => context.skip(REDIS_BLOOM_SKIP_REASON));
  });
}

describe('Bloom filters on a server without RedisBloom', () => {
  it("refuse backend 'redisbloom' with a clear error, and use the bitmap with 'auto'", async () => {
    const app = await startContext({ connection: topologies[0].connection() });
    const blooms = app.get(BloomFilterService);
    await expect(blooms.filter('wants-module', { capacity: 10, errorRate: 0.1, backend: 'redisbloom' }).add('a')).rejects.toThrow(
      RedisPatternsError,
    );
    await expect(blooms.filter('wants-module', { capacity: 10, errorRate: 0.1, backend: 'redisbloom' }).add('a')).rejects.toThrow(
      `Bloom filter "wants-module" asks for backend 'redisbloom', but the server has no BF.* commands`,
    );
    expect((await blooms.filter('auto', { capacity: 10, errorRate: 0.1 }).info()).backend).toBe('bitmap');
    await app.close();
  });
});

describe('Bloom filter options', () => {
  it.each([
    [{ capacity: 0, errorRate: 0.01 }, 'capacity'],
    [{ capacity: 1.5, errorRate: 0.01 }, 'capacity'],
    [{ capacity: 100, errorRate: 0 }, 'errorRate'],
    [{ capacity: 100, errorRate: 1 }, 'errorRate'],
    [{ capacity: 100, errorRate: Number.NaN }, 'errorRate'],
    [{ capacity: 100, errorRate: 0.01, backend: 'memory' }, 'backend'],
    [{ capacity: 1e10, errorRate: 0.0001 }, 'capacity'],
    [{ capacity: 100, errorRate: 0.01, batchSize: 0 }, 'batchSize'],
    [{ capacity: 100, errorRate: 0.01, batchSize: 10_001 }, 'batchSize'],
    [{ capacity: 100, errorRate: 1e-15 }, 'errorRate'],
    [{ capacity: 100, errorRate: 0.01, startsEmpty: true, prefill: () => [] }, 'startsEmpty'],
  ])('reject %o at startup, naming the option', async (options, option) => {
    await expect(startContext({ connection: topologies[0].connection(), bloomFilters: { products: options as never } })).rejects.toThrow(
      `"bloom filter "products".${option}"`,
    );
  });
});
