import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { CacheInterceptor as NestCacheInterceptor, CacheModule } from '@nestjs/cache-manager';
import { Controller, Get, Injectable, Module, UseGuards, UseInterceptors, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import KeyvRedis from '@keyv/redis';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { Cacheable, CacheInterceptor, RateLimit, RateLimitGuard, RedisPatternsModule } from '../lib/index.js';
import { keyOf, sampleValue } from './core.scenarios.js';
import { table } from './harness.js';

const autocannonBin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

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

function routesModule(url: string) {
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

  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'http-bench:', cache: { ttl: '1h' } })], controllers: [Routes], providers: [ProductSource] })
  class RoutesModule {}
  return { RoutesModule, close: () => raw.quit() };
}

function nestCacheManagerModule(url: string) {
  @Controller()
  class NestCacheManagerRoutes {
    @Get('nest-cache-manager')
    @UseInterceptors(NestCacheInterceptor)
    cached() {
      return value();
    }
  }

  @Module({ imports: [CacheModule.register({ stores: [new Keyv({ store: new KeyvRedis(url), namespace: 'ncm' })], ttl: 3_600_000 })], controllers: [NestCacheManagerRoutes] })
  class NestCacheManagerModule {}
  return NestCacheManagerModule;
}

function throttlerModule(url: string) {
  const redis = new Redis(url);

  @Controller()
  class ThrottlerRoutes {
    @Get('throttled')
    @UseGuards(ThrottlerGuard)
    throttled() {
      return value();
    }
  }

  @Module({ imports: [ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: HUGE_LIMIT }], storage: new ThrottlerStorageRedisService(redis) })], controllers: [ThrottlerRoutes] })
  class ThrottlerRoutesModule {}
  return { ThrottlerRoutesModule, close: () => redis.quit() };
}

async function listen(module: unknown): Promise<{ app: INestApplication; base: string }> {
  const app = await NestFactory.create(module as never, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, base: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
}

const ROUNDS = 3;

/** Requests per second from autocannon, run as its own process so it does not share the server's event loop. */
async function requestsPerSecond(url: string, seconds: number): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, [autocannonBin, '-c', '64', '-d', String(seconds), '-j', url], { maxBuffer: 16 * 1024 * 1024 });
  const result = JSON.parse(stdout) as { requests: { average: number }; non2xx: number };
  if (result.non2xx > 0) throw new Error(`${url} answered ${result.non2xx} non-2xx responses`);
  return result.requests.average;
}

/**
 * Over HTTP (Nest + Express, autocannon, 64 connections): a route doing a raw ioredis GET, routes
 * cached with CacheInterceptor and @Cacheable (every request a Redis hit), @nestjs/cache-manager's
 * interceptor with @keyv/redis, a route limited by RateLimitGuard (one @RateLimit policy, by IP)
 * and the same route under @nestjs/throttler's ThrottlerGuard with @nest-lab/throttler-storage-redis
 * (both with a limit no run reaches), and a route that touches no Redis. Each route is also given
 * as a ratio to the plain route: a rate-limited route should stay at 0.9x or more.
 */
export async function httpReport(url: string, seconds: number): Promise<string> {
  const routes = routesModule(url);
  const ours = await listen(routes.RoutesModule);
  const theirs = await listen(nestCacheManagerModule(url));
  const throttler = throttlerModule(url);
  const throttled = await listen(throttler.ThrottlerRoutesModule);
  const targets: [string, string][] = [
    ['route doing a raw ioredis GET + JSON.parse (baseline)', `${ours.base}/raw`],
    ['CacheInterceptor (Redis hit)', `${ours.base}/interceptor`],
    ['@Cacheable service method (Redis hit)', `${ours.base}/cacheable`],
    ['@nestjs/cache-manager CacheInterceptor + @keyv/redis', `${theirs.base}/nest-cache-manager`],
    ['RateLimitGuard + @RateLimit (sliding window, by IP)', `${ours.base}/rate-limited`],
    ['@nestjs/throttler ThrottlerGuard + @nest-lab Redis storage', `${throttled.base}/throttled`],
    ['plain route, no Redis', `${ours.base}/plain`],
  ];
  for (const [, target] of targets) await fetch(target); // warm the caches
  // Each route runs in ROUNDS turns taking turns with the others, so a slow phase of the machine weighs on all alike.
  const measured = targets.map(() => 0);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, [, target]] of targets.entries()) measured[index] += (await requestsPerSecond(target, Math.max(1, Math.round(seconds / ROUNDS)))) / ROUNDS;
  }
  await Promise.all([ours.app.close(), theirs.app.close(), throttled.app.close(), routes.close(), throttler.close()]);
  const [baseline, plain] = [measured[0], measured[measured.length - 1]];
  const rows = targets.map(([name], index) => {
    const rps = measured[index];
    return [name, Math.round(rps).toLocaleString('en-US'), `${(rps / baseline).toFixed(2)}x`, `${(rps / plain).toFixed(2)}x`];
  });
  return table(['route', 'req/s', 'vs baseline', 'vs plain'], rows, 1);
}
