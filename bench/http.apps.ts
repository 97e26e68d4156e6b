/**
 * The Nest apps the HTTP report measures: the same routes on Express and on Fastify, cached and
 * rate-limited by this module and by the peers, each module given its own Redis connection.
 */
import { CacheInterceptor as NestCacheInterceptor, CacheModule } from '@nestjs/cache-manager';
import { Controller, Get, Injectable, Module, UseGuards, UseInterceptors, type DynamicModule, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import KeyvRedis from '@keyv/redis';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import {
  Cacheable,
  CacheInterceptor,
  CacheService,
  RateLimit,
  RateLimitGuard,
  RedisKeyvStore,
  RedisPatternsModule,
  RedisThrottlerStorage,
} from '../lib/index.js';
import { keyOf, sampleValue } from './core.scenarios.js';

/** The same ~1 KB value behind every route. */
const value = () => sampleValue(7);
/** All of autocannon's requests come from one IP: a limit no run reaches, so every request is admitted. */
const HUGE_LIMIT = 1e9;

@Injectable()
class ProductSource {
  @Cacheable({ key: 'http-bench:product' })
  async find() {
    return value();
  }
}

/**
 * Our routes: a raw ioredis GET, CacheInterceptor, a @Cacheable service method, RateLimitGuard, and
 * a route without Redis; `close` ends the raw route's own connection.
 */
export function routesModule(url: string) {
  const raw = new Redis(url);

  @Controller()
  class Routes {
    constructor(private readonly source: ProductSource) {}

    @Get('plain')
    plain() {
      return value();
    }

    @Get('raw')
    async raw() {
      return JSON.parse((await raw.get(keyOf(7))) as string);
    }

    @Get('interceptor')
    @UseInterceptors(CacheInterceptor)
    interceptor() {
      return value();
    }

    @Get('cacheable')
    cacheable() {
      return this.source.find();
    }

    @Get('rate-limited')
    @UseGuards(RateLimitGuard)
    @RateLimit({ limit: HUGE_LIMIT, window: '1m', by: 'ip' })
    rateLimited() {
      return value();
    }
  }

  @Module({
    imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'http-bench:', cache: { ttl: '1h' } })],
    controllers: [Routes],
    providers: [ProductSource],
  })
  class RoutesModule {}
  return { RoutesModule, close: () => raw.quit() };
}

@Controller()
class NestCacheManagerRoutes {
  @Get('nest-cache-manager')
  @UseInterceptors(NestCacheInterceptor)
  cached() {
    return value();
  }
}

/** @nestjs/cache-manager with @keyv/redis, or (`ours`) on RedisKeyvStore: the same route, the same CacheModule options. */
export function nestCacheManagerModule(url: string, ours = false) {
  @Module({
    // A store per app (each app disconnects its own when it closes).
    imports: ours
      ? onRedisKeyvStore(url)
      : [
          CacheModule.registerAsync({
            useFactory: () => ({ stores: [new Keyv({ store: new KeyvRedis(url), namespace: 'ncm' })], ttl: 3_600_000 }),
          }),
        ],
    controllers: [NestCacheManagerRoutes],
  })
  class NestCacheManagerModule {}
  return NestCacheManagerModule;
}

/** CacheModule on RedisKeyvStore, the change a user makes. */
function onRedisKeyvStore(url: string) {
  const redis = RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'http-bench-ncm:' });
  return [
    redis,
    CacheModule.registerAsync({
      imports: [redis],
      inject: [CacheService],
      useFactory: (cache: CacheService) => ({ stores: [new RedisKeyvStore(cache, { decoded: true })], ttl: 3_600_000 }),
    }),
  ];
}

/** A route under @nestjs/throttler's ThrottlerGuard, with `throttler` (a ThrottlerModule, and so its storage). */
function throttledRoutesModule(throttler: DynamicModule, imports: DynamicModule[] = []) {
  @Controller()
  class ThrottlerRoutes {
    @Get('throttled')
    @UseGuards(ThrottlerGuard)
    throttled() {
      return value();
    }
  }

  @Module({ imports: [...imports, throttler], controllers: [ThrottlerRoutes] })
  class ThrottlerRoutesModule {}
  return ThrottlerRoutesModule;
}

/** The throttled route under @nestjs/throttler with @nest-lab's Redis storage, on a connection of its own. */
export function throttlerModule(url: string) {
  const redis = new Redis(url);
  const storage = new ThrottlerStorageRedisService(redis);
  const ThrottlerRoutesModule = throttledRoutesModule(
    ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: HUGE_LIMIT }], storage }),
  );
  return { ThrottlerRoutesModule, close: () => redis.quit() };
}

/** The same route, ThrottlerModule given our storage: the change README's "Coming from @nestjs/throttler" shows. */
export function redisThrottlerModule(url: string) {
  const patterns = RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-http-throttler:' });
  const throttler = ThrottlerModule.forRootAsync({
    imports: [patterns],
    inject: [RedisThrottlerStorage],
    useFactory: (storage: RedisThrottlerStorage) => ({ throttlers: [{ ttl: 60_000, limit: HUGE_LIMIT }], storage }),
  });
  return throttledRoutesModule(throttler, [patterns]);
}

/** The HTTP platforms each route is measured on, by the name the report gives them. */
export const platforms = { express: () => new ExpressAdapter(), fastify: () => new FastifyAdapter() };
export type Platform = keyof typeof platforms;

/** Starts `module` on `platform` on a free loopback port: the app, and the base URL of its routes. */
export async function listen(module: unknown, platform: Platform): Promise<{ app: INestApplication; base: string }> {
  const app = await NestFactory.create(module as never, platforms[platform](), { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, base: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
}
