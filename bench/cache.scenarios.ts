import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import KeyvRedis from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { Cacheable, CacheService, RedisKeyvStore, RedisPatternsModule } from '../lib/index.js';
import { KEY_COUNT, keyOf, sampleValue } from './core.scenarios.js';
import type { Scenario } from './harness.js';

const key = (i: number) => `bench:${i % KEY_COUNT}`;
/** How many keys the decorated miss scenario has used (each server the bench starts is new). */
let decoratedMisses = 0;

/** A provider whose methods are cached three ways: Redis only, L1 with copies, L1 shared (in its own module instance). */
@Injectable()
class Catalog {
  @Cacheable({ key: (i: number) => key(i) })
  async fromRedis(i: number) {
    return sampleValue(i % KEY_COUNT);
  }

  @Cacheable({ key: (i: number) => key(i), l1: true })
  async fromL1(i: number) {
    return sampleValue(i % KEY_COUNT);
  }

  /** Each call misses: a new key every time (as the other libraries' miss rows are given: a counter). */
  @Cacheable({ key: () => `miss:${decoratedMisses++}` })
  async miss(i: number) {
    return sampleValue(i % KEY_COUNT);
  }
}

async function catalogApp(url: string, shared: boolean): Promise<INestApplicationContext> {
  @Module({
    imports: [
      RedisPatternsModule.forRoot({
        connection: { url },
        keyPrefix: shared ? 'bench-shared:' : 'bench:',
        cache: { ttl: '1h', l1: { maxEntries: 10_000, ttl: '1h', shared } },
      }),
    ],
    providers: [Catalog],
  })
  class CatalogModule {}
  const app = await NestFactory.createApplicationContext(CatalogModule, { logger: false });
  const catalog = app.get(Catalog);
  // Warm Redis and L1 (L1 fills once the instance hears invalidations).
  for (let round = 0; round < 20 && app.get(CacheService).stats().l1.hits < KEY_COUNT; round++) {
    for (let i = 0; i < KEY_COUNT; i++) await catalog.fromL1(i);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return app;
}

/**
 * @Cacheable hits from Redis and from L1, and the miss path, beside raw ioredis, bentocache (L2
 * only, and L1+L2) and cache-manager with @keyv/redis, all in the same run; and cache-manager's own
 * get and set over RedisKeyvStore (Redis, and L1) beside cache-manager over @keyv/redis.
 */
export async function cacheScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const copying = await catalogApp(url, false);
  const sharing = await catalogApp(url, true);
  const catalog = copying.get(Catalog);
  const sharedCatalog = sharing.get(Catalog);
  const service = copying.get(CacheService);

  const { hostname, port } = new URL(url);
  const connection = { host: hostname, port: Number(port) };
  const bento = new BentoCache({
    default: 'l2',
    stores: {
      l2: bentostore().useL2Layer(redisDriver({ connection, prefix: 'bento-l2' })),
      both: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 10_000 }))
        .useL2Layer(redisDriver({ connection, prefix: 'bento-both' })),
      bothShared: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 10_000, serialize: false }))
        .useL2Layer(redisDriver({ connection, prefix: 'bento-shared' })),
    },
  });
  const cacheManager = createCache({ stores: [new Keyv({ store: new KeyvRedis(url), namespace: 'cm' })] });
  const overOurs = createCache({ stores: [new Keyv({ store: new RedisKeyvStore(service), namespace: 'cm' })] });
  const overOursL1 = createCache({
    stores: [new Keyv({ store: new RedisKeyvStore(service, { l1: true, decoded: true }), namespace: 'cm' })],
  });
  // Reads handed to Keyv decoded, as for @nestjs/cache-manager's Keyv (Keyv's default deserialize, no compression).
  const overOursDecoded = createCache({ stores: [new Keyv({ store: new RedisKeyvStore(service, { decoded: true }), namespace: 'cm' })] });
  // Values handed over as they are: no JSON on Keyv's side, the module's codec only.
  const overOursRaw = createCache({
    stores: [
      new Keyv({ store: new RedisKeyvStore(service, { serialize: false }), namespace: 'cm', serialize: undefined, deserialize: undefined }),
    ],
  });
  const load = async (i: number) => sampleValue(i % KEY_COUNT);
  for (let i = 0; i < KEY_COUNT; i++) {
    await Promise.all([
      bento.use('l2').getOrSet({ key: key(i), factory: () => load(i), ttl: '1h' }),
      bento.use('both').getOrSet({ key: key(i), factory: () => load(i), ttl: '1h' }),
      bento.use('bothShared').getOrSet({ key: key(i), factory: () => load(i), ttl: '1h' }),
      cacheManager.wrap(key(i), () => load(i), 3_600_000),
      overOurs.set(key(i), await load(i), 3_600_000),
      catalog.fromRedis(i),
    ]);
  }

  const baseline = (group: string): Scenario => ({
    group,
    name: 'raw ioredis GET + JSON.parse',
    baseline: true,
    run: async (i) => JSON.parse((await raw.get(keyOf(i))) as string),
  });
  let missCounter = 0;
  const scenarios: Scenario[] = [
    baseline('cache hit, Redis'),
    { group: 'cache hit, Redis', name: '@Cacheable', run: (i) => catalog.fromRedis(i) },
    { group: 'cache hit, Redis', name: 'CacheService.getOrSet', run: (i) => service.getOrSet(key(i), () => load(i)) },
    {
      group: 'cache hit, Redis',
      name: 'bentocache getOrSet (L2 only)',
      run: (i) => bento.use('l2').getOrSet({ key: key(i), factory: () => load(i), ttl: '1h' }),
    },
    {
      group: 'cache hit, Redis',
      name: 'cache-manager 7 + @keyv/redis wrap',
      run: (i) => cacheManager.wrap(key(i), () => load(i), 3_600_000),
    },
    baseline('cache hit, L1'),
    { group: 'cache hit, L1', name: '@Cacheable l1 (copies, default)', run: (i) => catalog.fromL1(i) },
    {
      group: 'cache hit, L1',
      name: 'bentocache L1+L2 (serialize, default)',
      run: (i) => bento.use('both').getOrSet({ key: key(i), factory: () => load(i), ttl: '1h' }),
    },
    { group: 'cache hit, L1', name: '@Cacheable l1 shared', run: (i) => sharedCatalog.fromL1(i) },
    {
      group: 'cache hit, L1',
      name: 'bentocache L1+L2 (serialize: false)',
      run: (i) => bento.use('bothShared').getOrSet({ key: key(i), factory: () => load(i), ttl: '1h' }),
    },
    {
      group: 'cache miss',
      name: 'raw ioredis GET (nil) + SET PX',
      baseline: true,
      run: async (i) => {
        const k = `raw-miss:${missCounter++}`;
        await raw.get(k);
        const value = await load(i);
        await raw.set(k, JSON.stringify(value), 'PX', 60_000);
        return value;
      },
    },
    { group: 'cache miss', name: '@Cacheable (lock, generation check)', run: (i) => catalog.miss(i) },
    {
      group: 'cache miss',
      name: 'bentocache getOrSet (L2 only)',
      run: (i) => bento.use('l2').getOrSet({ key: `bento-miss:${missCounter++}`, factory: () => load(i), ttl: '1m' }),
    },
    {
      group: 'cache miss',
      name: 'cache-manager 7 + @keyv/redis wrap',
      run: (i) => cacheManager.wrap(`cm-miss:${missCounter++}`, () => load(i), 60_000),
    },
    baseline('cache-manager get'),
    { group: 'cache-manager get', name: 'cache-manager 7 + @keyv/redis get', run: (i) => cacheManager.get(key(i)) },
    { group: 'cache-manager get', name: 'cache-manager 7 + RedisKeyvStore get', run: (i) => overOurs.get(key(i)) },
    { group: 'cache-manager get', name: 'cache-manager 7 + RedisKeyvStore get (decoded: true)', run: (i) => overOursDecoded.get(key(i)) },
    { group: 'cache-manager get', name: 'cache-manager 7 + RedisKeyvStore get (l1, decoded: true)', run: (i) => overOursL1.get(key(i)) },
    { group: 'cache-manager get', name: 'cache-manager 7 + RedisKeyvStore get (serialize: false)', run: (i) => overOursRaw.get(key(i)) },
    {
      group: 'cache-manager set',
      name: 'raw ioredis SET PX + JSON.stringify',
      baseline: true,
      run: async (i) => raw.set(`raw-set:${i % KEY_COUNT}`, JSON.stringify(await load(i)), 'PX', 3_600_000),
    },
    {
      group: 'cache-manager set',
      name: 'cache-manager 7 + @keyv/redis set',
      run: async (i) => cacheManager.set(key(i), await load(i), 3_600_000),
    },
    {
      group: 'cache-manager set',
      name: 'cache-manager 7 + RedisKeyvStore set',
      run: async (i) => overOurs.set(key(i), await load(i), 3_600_000),
    },
    {
      group: 'cache-manager set',
      name: 'cache-manager 7 + RedisKeyvStore set (serialize: false)',
      run: async (i) => overOursRaw.set(key(i), await load(i), 3_600_000),
    },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([
        raw.quit(),
        copying.close(),
        sharing.close(),
        bento.disconnectAll(),
        cacheManager.disconnect(),
        overOurs.disconnect(),
      ]);
    },
  };
}
