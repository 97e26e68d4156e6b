import { Controller, Get, Logger, UseGuards, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RateLimit, RateLimitGuard, RateLimitService, RateLimitUnavailableError, RedisPatternsModule } from '../../lib/index.js';
import { waitFor } from '../support/redis-server.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { uniquePrefix } from '../support/testing-app.js';

@Controller()
@UseGuards(RateLimitGuard)
class OutageController {
  @Get('open')
  @RateLimit({ limit: 5, window: '1m', algorithm: 'fixed-window' })
  open() {
    return { ok: true };
  }

  @Get('closed')
  @RateLimit({ limit: 5, window: '1m', algorithm: 'fixed-window', onStoreError: 'closed' })
  closed() {
    return { ok: true };
  }
}

describe('rate limiting when Redis goes away (the offline queue on, to show nothing is queued)', () => {
  const own = ownRedisServer();
  let app: INestApplication;
  let base: string;
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisPatternsModule.forRoot({ connection: own.server.address, keyPrefix: uniquePrefix(), offlineQueue: true, commandTimeout: '300ms', reconnect: { minDelay: '20ms', maxDelay: '100ms' } })],
      controllers: [OutageController],
    }).compile();
    app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });
  afterAll(() => app?.close());

  const get = async (path: string) => {
    const response = await fetch(`${base}${path}`);
    return { status: response.status, limits: response.headers.get('ratelimit') };
  };

  it("admits 'open' policies unchecked, answers 503 for 'closed' ones, logs once, and never replays a debit", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    try {
      expect(await get('/open')).toMatchObject({ status: 200, limits: expect.stringMatching(/^"default";r=4;/) });
      await own.server.stop();

      const during = await Promise.all([get('/open'), get('/open'), get('/open'), get('/closed')]);
      expect(during.map((response) => response.status)).toEqual([200, 200, 200, 503]);
      expect(during[0].limits).toBeNull();
      const limits = app.get(RateLimitService);
      expect(await limits.consume('svc', { limit: 1, window: '1m' })).toMatchObject({ allowed: true, unavailable: true });
      await expect(limits.consume('svc', { limit: 1, window: '1m', onStoreError: 'closed' })).rejects.toBeInstanceOf(RateLimitUnavailableError);
      const outageWarnings = warn.mock.calls.filter(([message]) => String(message).includes('unavailable to rate limiting'));
      expect(outageWarnings).toHaveLength(1);

      await own.server.start();
      await waitFor(async () => (await get('/open')).status === 200 && (await get('/open')).limits !== null, 'rate limiting to work again', 10_000);
      // /closed was never debited: a debit queued during the outage would have been replayed on reconnect.
      expect((await get('/closed')).limits).toMatch(/^"default";r=4;/);
      expect(log.mock.calls.some(([message]) => String(message) === 'Redis is available to rate limiting again')).toBe(true);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
