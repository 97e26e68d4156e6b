import { CACHE_MANAGER, CacheInterceptor, CacheModule, CacheTTL } from '@nestjs/cache-manager';
import { Controller, Get, Logger, Param, UseInterceptors, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { Cache } from 'cache-manager';
import Keyv from 'keyv';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CacheService,
  RedisConnections,
  RedisKeys,
  RedisKeyvStore,
  RedisPatternsModule,
  type RedisConnectionOptions,
} from '../../lib/index.js';
import { encodeCacheKey } from '../../lib/cache/cache-key.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { QUICK_OUTAGES, SLOW_BULK_OPERATIONS, topologies, uniquePrefix } from '../support/testing-app.js';

const calls: Record<string, number> = {};
const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);

// A controller as an @nestjs/cache-manager app has it: its interceptor, its @CacheTTL (ms).
@Controller('products')
@UseInterceptors(CacheInterceptor)
class ProductsController {
  @Get()
  list(): { calls: number } {
    return { calls: count('list') };
  }

  @Get(':id')
  @CacheTTL(5_000)
  find(@Param('id') id: string): { id: string; calls: number } {
    return { id, calls: count(id) };
  }
}

/** An app whose @nestjs/cache-manager runs on our store: the change is the `registerAsync` below. */
async function startApp(
  connection: RedisConnectionOptions,
  adapter: ExpressAdapter | FastifyAdapter,
  extra = {},
): Promise<INestApplication> {
  const redis = RedisPatternsModule.forRoot({ connection, keyPrefix: uniquePrefix(), ...extra });
  const moduleRef = await Test.createTestingModule({
    imports: [
      redis,
      CacheModule.registerAsync({
        imports: [redis],
        inject: [RedisKeyvStore],
        useFactory: (store: RedisKeyvStore) => ({ stores: [store], ttl: 20_000 }),
      }),
    ],
    controllers: [ProductsController],
  }).compile();
  const app = moduleRef.createNestApplication(adapter, { logger: false });
  await app.listen(0, '127.0.0.1');
  return app;
}

describe.each(
  topologies.flatMap(({ topology, connection }) => [
    { topology, connection, platform: 'Express', adapter: () => new ExpressAdapter() },
    { topology, connection, platform: 'Fastify', adapter: () => new FastifyAdapter() },
  ]),
)('@nestjs/cache-manager over RedisKeyvStore on $topology ($platform)', ({ connection, adapter }) => {
  let app: INestApplication;
  let base: string;
  let cache: CacheService;
  let cacheManager: Cache;
  beforeAll(async () => {
    for (const name of Object.keys(calls)) delete calls[name];
    app = await startApp(connection(), adapter(), SLOW_BULK_OPERATIONS);
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    cache = app.get(CacheService);
    cacheManager = app.get(CACHE_MANAGER);
  });
  afterAll(() => app.close());

  const get = async (path: string) => {
    const response = await fetch(`${base}${path}`);
    return { status: response.status, cache: response.headers.get('x-cache'), body: (await response.json()) as unknown };
  };
  const pttl = (key: string) =>
    app
      .get(RedisConnections)
      .get()
      .pttl(`${app.get(RedisKeys).prefix}{c:${encodeCacheKey(key)}}`);

  it("caches a route through its interceptor, in CacheService's key space, for @CacheTTL's milliseconds", async () => {
    expect(await get('/products/1')).toEqual({ status: 200, cache: 'MISS', body: { id: '1', calls: 1 } });
    // Its interceptor writes after answering: the entry shows up right after.
    await expect.poll(() => cache.get('/products/1')).toEqual({ id: '1', calls: 1 });
    expect(await get('/products/1')).toEqual({ status: 200, cache: 'HIT', body: { id: '1', calls: 1 } });
    expect(calls['1']).toBe(1);
    const remaining = await pttl('/products/1');
    expect(remaining).toBeGreaterThan(4_000);
    expect(remaining).toBeLessThanOrEqual(5_000);
  });

  it("uses CacheModule's ttl where the route has none", async () => {
    await get('/products');
    await expect.poll(() => cache.get('/products')).toEqual({ calls: 1 });
    expect(await pttl('/products')).toBeGreaterThan(19_000);
    expect(await pttl('/products')).toBeLessThanOrEqual(20_000);
  });

  it('serves what CacheService wrote, and each sees the other’s deletes', async () => {
    await cache.set('/products/2', { id: '2', calls: -1 });
    expect(await get('/products/2')).toEqual({ status: 200, cache: 'HIT', body: { id: '2', calls: -1 } });
    expect(calls['2']).toBeUndefined();

    await cacheManager.set('report', { rows: 3 }, 8_000);
    expect(await cache.get('report')).toEqual({ rows: 3 });
    expect((await cacheManager.ttl('report'))! - Date.now()).toBeLessThanOrEqual(8_000);
    await cache.delete('report');
    expect(await cacheManager.get('report')).toBeUndefined();
    await cache.set('report', 'again');
    await cacheManager.del('report');
    expect(await cache.get('report')).toBeUndefined();
  });

  it("clears the whole cache with the cache manager's clear()", async () => {
    await cache.set('written-by-cache-service', 1);
    await cacheManager.set('written-by-cache-manager', 2);
    await cacheManager.clear();
    expect(await cache.get('written-by-cache-service')).toBeUndefined();
    expect(await cacheManager.get('written-by-cache-manager')).toBeUndefined();
  });
});

describe.each(topologies)('@nestjs/cache-manager over a Keyv without serialization on $topology', ({ connection }) => {
  let app: INestApplication;
  beforeAll(async () => {
    const redis = RedisPatternsModule.forRoot({ connection: connection(), keyPrefix: uniquePrefix() });
    const moduleRef = await Test.createTestingModule({
      imports: [
        redis,
        CacheModule.registerAsync({
          imports: [redis],
          inject: [CacheService],
          // As the README has it: a Keyv instance is used as it is.
          useFactory: (cache: CacheService) => ({
            stores: [
              new Keyv({
                store: new RedisKeyvStore(cache, { serialize: false }),
                serialize: undefined,
                deserialize: undefined,
                namespace: undefined,
              }),
            ],
            ttl: 20_000,
          }),
        }),
      ],
      controllers: [ProductsController],
    }).compile();
    app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
  });
  afterAll(() => app.close());

  it("keeps values' types between CacheService and the cache manager, with CacheModule's ttl and the route's", async () => {
    const cache = app.get(CacheService);
    const cacheManager = app.get<Cache>(CACHE_MANAGER);
    const value = { at: new Date(7), ids: new Set([1, 2]), big: 2n ** 64n };
    await cacheManager.set('typed', value);
    expect(await cache.get('typed')).toStrictEqual(value);
    await cache.set('typed-back', value);
    expect(await cacheManager.get('typed-back')).toStrictEqual(value);
    const redis = app.get(RedisConnections).get();
    const pttl = await redis.pttl(`${app.get(RedisKeys).prefix}{c:typed}`);
    expect(pttl).toBeGreaterThan(19_000);
    expect(pttl).toBeLessThanOrEqual(20_000);

    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const first = await fetch(`${base}/products/typed-route`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    await expect.poll(() => cache.get('/products/typed-route')).toEqual(await first.json());
    expect((await fetch(`${base}/products/typed-route`)).headers.get('x-cache')).toBe('HIT');
    expect(await redis.pttl(`${app.get(RedisKeys).prefix}{c:${encodeCacheKey('/products/typed-route')}}`)).toBeLessThanOrEqual(5_000);
  });
});

describe('@nestjs/cache-manager over RedisKeyvStore when Redis stops', () => {
  const own = ownRedisServer();

  it('answers the route from its handler, never a 500, and caches again once Redis is back', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger, 'error').mockImplementation(() => undefined);
    const app = await startApp(own.server.address, new ExpressAdapter(), QUICK_OUTAGES);
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const get = async (path: string) => {
      const response = await fetch(`${base}${path}`);
      return { status: response.status, body: (await response.json()) as { calls: number } };
    };
    try {
      await own.server.stop();
      const before = calls.outage ?? 0;
      expect(await get('/products/outage')).toEqual({ status: 200, body: { id: 'outage', calls: before + 1 } });
      expect(await get('/products/outage')).toEqual({ status: 200, body: { id: 'outage', calls: before + 2 } });

      await own.server.start();
      await expect
        .poll(async () => (await get('/products/back'), app.get(CacheService).get('/products/back')), { timeout: 10_000 })
        .toBeDefined();
      const cached = (await get('/products/back')).body.calls;
      expect((await get('/products/back')).body.calls).toBe(cached);
    } finally {
      await app.close();
      vi.restoreAllMocks();
    }
  }, 30_000);
});
