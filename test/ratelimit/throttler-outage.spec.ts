import { Controller, Get, Injectable, Logger, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { ThrottlerGuard, ThrottlerModule, type ThrottlerModuleOptions } from '@nestjs/throttler';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  RateLimitUnavailableError,
  RedisConnections,
  RedisPatternsModule,
  RedisThrottlerStorage,
  type OutageKind,
  type RateLimitOptions,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { waitFor } from '../support/redis-server.js';
import { QUICK_OUTAGES, uniquePrefix } from '../support/testing-app.js';

/** Closed for the `strict` throttler only, open (the module's default) for the others. */
@Injectable()
class StrictLoginStorage extends RedisThrottlerStorage {
  protected override whenUnavailable(throttlerName: string, outage: OutageKind, cause?: unknown) {
    if (throttlerName === 'strict') throw new RateLimitUnavailableError(throttlerName, outage, { cause });
    return super.whenUnavailable(throttlerName, outage, cause);
  }
}

@Controller('throttled')
class ThrottledController {
  @Get()
  get() {
    return { ok: true };
  }
}

describe('RedisThrottlerStorage when Redis goes away (the offline queue on, to show nothing is queued)', () => {
  const own = ownRedisServer();
  const apps: Record<'open' | 'closed', INestApplication> = {} as never;
  const bases: Record<'open' | 'closed', string> = {} as never;

  async function start(onStoreError: RateLimitOptions['onStoreError']): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisPatternsModule.forRoot({
          connection: own.server.address,
          keyPrefix: uniquePrefix(),
          offlineQueue: true,
          ...QUICK_OUTAGES,
          rateLimit: { onStoreError },
          isGlobal: true,
        }),
        ThrottlerModule.forRootAsync({
          inject: [RedisThrottlerStorage],
          useFactory: (storage: RedisThrottlerStorage): ThrottlerModuleOptions => ({ throttlers: [{ ttl: 60_000, limit: 5 }], storage }),
        }),
      ],
      controllers: [ThrottledController],
      providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }, StrictLoginStorage],
    }).compile();
    const app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    return app;
  }

  beforeAll(async () => {
    for (const mode of ['open', 'closed'] as const) {
      apps[mode] = await start(mode);
      bases[mode] = (await apps[mode].getUrl()).replace('[::1]', '127.0.0.1');
    }
  });
  afterAll(() => Promise.all(Object.values(apps).map((app) => app.close())));

  const get = async (mode: 'open' | 'closed') => {
    const response = await fetch(`${bases[mode]}/throttled`);
    return {
      status: response.status,
      remaining: response.headers.get('x-ratelimit-remaining'),
      reset: response.headers.get('x-ratelimit-reset'),
      body: (await response.json()) as unknown,
    };
  };

  it("admits unchecked with onStoreError 'open', answers 503 with 'closed', logs once, and never replays a hit", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      expect(await get('open')).toMatchObject({ status: 200, remaining: '4' });
      expect(await get('closed')).toMatchObject({ status: 200, remaining: '4' });
      await own.server.stop();

      const open = await Promise.all([get('open'), get('open'), get('open'), get('open'), get('open'), get('open')]);
      // Nothing counted: the guard's headers say the whole limit is left, and no window.
      expect(open).toEqual(Array.from({ length: 6 }, () => ({ status: 200, remaining: '5', reset: '0', body: { ok: true } })));
      const closed = await Promise.all([get('closed'), get('closed')]);
      expect(closed).toEqual(
        Array.from({ length: 2 }, () => ({
          status: 503,
          remaining: null,
          reset: null,
          body: { statusCode: 503, message: 'Service Unavailable' },
        })),
      );
      await expect(apps.closed.get(RedisThrottlerStorage).increment('k', 1000, 1, 0, 'login')).rejects.toMatchObject({
        constructor: RateLimitUnavailableError,
        policy: 'login',
      });

      const outageWarnings = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('throttler storage'));
      // Once per app, in the library's words (never ioredis's).
      expect(outageWarnings.sort()).toEqual([
        expect.stringMatching(
          /^Redis connection "default" is unavailable to the throttler storage \((no connection to the server|no reply within the command timeout)\); ThrottlerGuard admits every request until it is back$/,
        ),
        expect.stringMatching(
          /^Redis connection "default" is unavailable to the throttler storage \(.+\); ThrottlerGuard answers 503 until it is back$/,
        ),
      ]);

      // A subclass decides per throttler (its own instance logs the outage once more).
      const strict = apps.open.get(StrictLoginStorage);
      await expect(strict.increment('k', 1000, 1, 0, 'strict')).rejects.toBeInstanceOf(RateLimitUnavailableError);
      expect(await strict.increment('k', 1000, 1, 0, 'lenient')).toEqual({
        totalHits: 0,
        timeToExpire: 0,
        isBlocked: false,
        timeToBlockExpire: 0,
      });

      await own.server.start();
      await waitFor(async () => (await get('closed')).status === 200, 'the throttler storage to count again', 10_000);
      // Each app reconnects on its own backoff: the open one must be back before its count is read.
      await waitFor(async () => apps.open.get(RedisConnections).get().status === 'ready', 'the open app to reconnect', 10_000);
      // The restarted server lost the first hits; a hit sent during the outage and replayed on reconnect would show here.
      expect(await get('open')).toMatchObject({ status: 200, remaining: '4' });
    } finally {
      vi.restoreAllMocks();
    }
  });
});
