import { Controller, Get, type DynamicModule, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { SkipThrottle, Throttle, ThrottlerGuard, ThrottlerModule, type ThrottlerModuleOptions } from '@nestjs/throttler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisPatternsModule, RedisThrottlerStorage } from '../../lib/index.js';
import { sleep } from '../support/redis-server.js';
import { scanKeys } from '../support/scan.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';

/**
 * @nestjs/throttler's own e2e scenarios (its test/ folder: default throttling, `@Throttle`
 * overrides, `@SkipThrottle`, several named throttlers, `blockDuration`, headers with and without
 * name suffixes, a key shared by routes), with its real ThrottlerGuard counting in Redis through
 * RedisThrottlerStorage, on Express and Fastify, against a standalone server and a Cluster.
 */

/** Throttled by the module's throttler: 3 per 4 s, then blocked for 1.5 s. */
@Controller('default')
class DefaultController {
  @Get()
  get() {
    return { ok: true };
  }
}

@Controller('limit')
@Throttle({ default: { limit: 2, ttl: 4000, blockDuration: 1000 } })
class LimitController {
  @Get()
  classLimit() {
    return { ok: true };
  }

  @Get('higher')
  @Throttle({ default: { limit: 4, ttl: 4000, blockDuration: 1000 } })
  higher() {
    return { ok: true };
  }

  @Get('skipped')
  @SkipThrottle()
  skipped() {
    return { ok: true };
  }

  /** A block longer than the window. */
  @Get('long-block')
  @Throttle({ default: { limit: 1, ttl: 1000, blockDuration: 4000 } })
  longBlock() {
    return { ok: true };
  }
}

/** Two routes whose `generateKey` gives both the same key: they count together. */
const sharedKey = (_context: unknown, tracker: string, throttler: string) => `shared:${throttler}:${tracker}`;

@Controller('shared')
@Throttle({ default: { limit: 2, ttl: 4000, generateKey: sharedKey } })
class SharedController {
  @Get('a')
  a() {
    return { ok: true };
  }

  @Get('b')
  b() {
    return { ok: true };
  }
}

@Controller('multi')
class MultiController {
  @Get()
  everything() {
    return { ok: true };
  }

  @Get('skip-short')
  @SkipThrottle({ short: true })
  skipShort() {
    return { ok: true };
  }

  @Get('skip-default-and-long')
  @SkipThrottle({ default: true, long: true })
  skipDefaultAndLong() {
    return { ok: true };
  }
}

type Response = { status: number; headers: Record<string, string>; body: Record<string, unknown> };

async function get(base: string, path: string): Promise<Response> {
  const response = await fetch(`${base}${path}`);
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** The X-RateLimit-* and Retry-After headers of a response, without the others. */
function limitHeaders(response: Response): Record<string, string> {
  return Object.fromEntries(Object.entries(response.headers).filter(([name]) => /^(x-ratelimit-|retry-after)/.test(name)));
}

async function listen(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return (await app.getUrl()).replace('[::1]', '127.0.0.1');
}

describe.each(
  topologies.flatMap(({ topology, connection }) => [
    { platform: 'Express', topology, connection, adapter: () => new ExpressAdapter() },
    { platform: 'Fastify', topology, connection, adapter: () => new FastifyAdapter() },
  ]),
)('ThrottlerGuard with RedisThrottlerStorage ($platform, $topology)', ({ connection, adapter }) => {
  describe('one throttler, overridden by @Throttle', () => {
    const keyPrefix = uniquePrefix();
    const apps: INestApplication[] = [];
    let base: string;

    /** An app instance with its own RedisPatternsModule (not global), handed to ThrottlerModule through `imports`. */
    async function startInstance(): Promise<INestApplication> {
      const redis: DynamicModule = RedisPatternsModule.forRoot({ connection: connection(), keyPrefix });
      const moduleRef = await Test.createTestingModule({
        imports: [
          redis,
          ThrottlerModule.forRootAsync({
            imports: [redis],
            inject: [RedisThrottlerStorage],
            useFactory: (storage: RedisThrottlerStorage): ThrottlerModuleOptions => ({
              throttlers: [{ limit: 3, ttl: 4000, blockDuration: 1500 }],
              storage,
            }),
          }),
        ],
        controllers: [DefaultController, LimitController, SharedController],
        providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
      }).compile();
      const app = moduleRef.createNestApplication(adapter(), { logger: false });
      apps.push(app);
      return app;
    }

    beforeAll(async () => {
      base = await listen(await startInstance());
    });
    afterAll(() => Promise.all(apps.map((app) => app.close())));

    it('admits the limit with X-RateLimit-* headers, then 429 with Retry-After, and counts afresh after the block', async () => {
      for (let hit = 1; hit <= 3; hit++) {
        const response = await get(base, '/default');
        expect(response.status).toBe(200);
        expect(limitHeaders(response)).toEqual({
          'x-ratelimit-limit': '3',
          'x-ratelimit-remaining': String(3 - hit),
          'x-ratelimit-reset': '4',
        });
      }
      const rejected = await get(base, '/default');
      expect(rejected).toMatchObject({ status: 429, body: { statusCode: 429, message: 'ThrottlerException: Too Many Requests' } });
      expect(limitHeaders(rejected)).toEqual({ 'retry-after': '2' });
      expect((await get(base, '/default')).status).toBe(429);
      // The block (1.5 s) ends before the window (4 s): the count starts afresh.
      await sleep(1600);
      const after = await get(base, '/default');
      expect(after.status).toBe(200);
      expect(after.headers['x-ratelimit-remaining']).toBe('2');
    });

    it('takes the limits of @Throttle on the class and on the handler, and skips @SkipThrottle routes', async () => {
      const limited = [];
      for (let hit = 0; hit < 3; hit++) limited.push(await get(base, '/limit'));
      expect(limited.map((response) => [response.status, limitHeaders(response)])).toEqual([
        [200, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '1', 'x-ratelimit-reset': '4' }],
        [200, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '4' }],
        [429, { 'retry-after': '1' }],
      ]);
      const higher = [];
      for (let hit = 0; hit < 5; hit++) higher.push(await get(base, '/limit/higher'));
      expect(higher.map((response) => response.status)).toEqual([200, 200, 200, 200, 429]);
      expect(higher[0].headers['x-ratelimit-limit']).toBe('4');
      for (let hit = 0; hit < 6; hit++) {
        const skipped = await get(base, '/limit/skipped');
        expect(skipped.status).toBe(200);
        expect(limitHeaders(skipped)).toEqual({});
      }
    });

    it('keeps a block that outlasts the window', async () => {
      expect((await get(base, '/limit/long-block')).status).toBe(200);
      const rejected = await get(base, '/limit/long-block');
      expect([rejected.status, rejected.headers['retry-after']]).toEqual([429, '4']);
      await sleep(1300); // the window (1 s) is over, the block (4 s) is not
      const stillBlocked = await get(base, '/limit/long-block');
      expect(stillBlocked.status).toBe(429);
      // The block's time left (2.7 s, rounded up; 2 on a slow machine), not the window's (none).
      expect(['3', '2']).toContain(stillBlocked.headers['retry-after']);
      await sleep(Number(stillBlocked.headers['retry-after']) * 1000 + 100);
      expect((await get(base, '/limit/long-block')).status).toBe(200);
    });

    it('counts routes that generate the same key together', async () => {
      expect((await get(base, '/shared/a')).headers['x-ratelimit-remaining']).toBe('1');
      expect((await get(base, '/shared/b')).headers['x-ratelimit-remaining']).toBe('0');
      expect((await get(base, '/shared/a')).status).toBe(429);
      expect((await get(base, '/shared/b')).status).toBe(429);
    });

    it('counts in Redis, so another instance of the app sees the same counts', async () => {
      const other = await listen(await startInstance());
      // Blocked for 4 s by the test before.
      expect((await get(other, '/shared/a')).status).toBe(429);
      const redis = apps[0].get(RedisConnections).get();
      expect((await scanKeys(redis, `${keyPrefix}{th:*`)).length).toBeGreaterThan(0);
    });
  });

  describe('several named throttlers', () => {
    let app: INestApplication;
    let base: string;
    beforeAll(async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [
          RedisPatternsModule.forRoot({ connection: connection(), keyPrefix: uniquePrefix(), isGlobal: true }),
          ThrottlerModule.forRootAsync({
            inject: [RedisThrottlerStorage],
            useFactory: (storage: RedisThrottlerStorage): ThrottlerModuleOptions => ({
              throttlers: [
                { ttl: 3000, limit: 2 },
                { name: 'long', ttl: 60_000, limit: 4 },
                { name: 'short', ttl: 1000, limit: 1 },
              ],
              errorMessage: (context, detail) => `${context.getHandler().name}: ${detail.totalHits} of ${detail.limit}`,
              storage,
            }),
          }),
        ],
        controllers: [MultiController],
        providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
      }).compile();
      app = moduleRef.createNestApplication(adapter(), { logger: false });
      base = await listen(app);
    });
    afterAll(() => app.close());

    it('sets the headers of each throttler, suffixed with its name but for `default`, and blocks on the first one over its limit', async () => {
      const first = await get(base, '/multi');
      expect(first.status).toBe(200);
      expect(limitHeaders(first)).toEqual({
        'x-ratelimit-limit-short': '1',
        'x-ratelimit-remaining-short': '0',
        'x-ratelimit-reset-short': '1',
        'x-ratelimit-limit': '2',
        'x-ratelimit-remaining': '1',
        'x-ratelimit-reset': '3',
        'x-ratelimit-limit-long': '4',
        'x-ratelimit-remaining-long': '3',
        'x-ratelimit-reset-long': '60',
      });
      // `short` (checked first: the shortest ttl) passes its limit: the others are not counted.
      const overShort = await get(base, '/multi');
      expect(overShort.status).toBe(429);
      expect(limitHeaders(overShort)).toEqual({ 'retry-after-short': '1' });
      expect(overShort.body.message).toBe('everything: 2 of 1');

      await sleep(1100); // short's block is over
      const second = await get(base, '/multi');
      expect(second.status).toBe(200);
      expect([second.headers['x-ratelimit-remaining'], second.headers['x-ratelimit-remaining-long']]).toEqual(['0', '2']);

      await sleep(1100); // short's hit has expired; default's two still count
      const overDefault = await get(base, '/multi');
      expect(overDefault.status).toBe(429);
      expect(limitHeaders(overDefault)).toEqual({
        'x-ratelimit-limit-short': '1',
        'x-ratelimit-remaining-short': '0',
        'x-ratelimit-reset-short': '1',
        'retry-after': '3',
      });
      expect(overDefault.body.message).toBe('everything: 3 of 2');
    });

    it('skips only the throttlers @SkipThrottle names', async () => {
      const skipShort = [await get(base, '/multi/skip-short'), await get(base, '/multi/skip-short')];
      expect(skipShort.map((response) => response.status)).toEqual([200, 200]);
      expect(skipShort.map((response) => response.headers['x-ratelimit-remaining'])).toEqual(['1', '0']);
      expect(skipShort[0].headers['x-ratelimit-limit-short']).toBeUndefined();

      const onlyShort = await get(base, '/multi/skip-default-and-long');
      expect(limitHeaders(onlyShort)).toEqual({
        'x-ratelimit-limit-short': '1',
        'x-ratelimit-remaining-short': '0',
        'x-ratelimit-reset-short': '1',
      });
      expect(limitHeaders(await get(base, '/multi/skip-default-and-long'))).toEqual({ 'retry-after-short': '1' });
    });
  });
});
