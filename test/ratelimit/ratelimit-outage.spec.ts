import { Controller, Get, Logger, UseGuards, type INestApplication, type INestApplicationContext } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import calculateSlot from 'cluster-key-slot';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  RateLimit,
  RateLimitGuard,
  RateLimitService,
  RateLimitUnavailableError,
  REDIS_CLIENT,
  RedisPatternsModule,
  type RateLimitPolicy,
} from '../../lib/index.js';
import { command, RedisTestCluster, waitFor } from '../support/redis-server.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { startContext, uniquePrefix } from '../support/testing-app.js';

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
      imports: [
        RedisPatternsModule.forRoot({
          connection: own.server.address,
          keyPrefix: uniquePrefix(),
          offlineQueue: true,
          commandTimeout: '300ms',
          reconnect: { minDelay: '20ms', maxDelay: '100ms' },
        }),
      ],
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
      await expect(limits.consume('svc', { limit: 1, window: '1m', onStoreError: 'closed' })).rejects.toBeInstanceOf(
        RateLimitUnavailableError,
      );
      const outageWarnings = warn.mock.calls.filter(([message]) => String(message).includes('unavailable to rate limiting'));
      expect(outageWarnings).toHaveLength(1);
      // In the library's words, never ioredis's ("Stream isn't writeable...").
      expect(outageWarnings[0][0]).toMatch(
        /^Redis connection "default" is unavailable to rate limiting \((no connection to the server|no reply within the command timeout)\); 'open' policies admit and 'closed' ones answer 503 until it is back$/,
      );

      await own.server.start();
      await waitFor(
        async () => (await get('/open')).status === 200 && (await get('/open')).limits !== null,
        'rate limiting to work again',
        10_000,
      );
      // /closed was never debited: a debit queued during the outage would have been replayed on reconnect.
      expect((await get('/closed')).limits).toMatch(/^"default";r=4;/);
      // The end of the outage is logged once no call has failed for a second.
      const back = () =>
        log.mock.calls.filter(([message]) => String(message) === 'Redis connection "default" is available to rate limiting again').length;
      await expect
        .poll(async () => (await limits.consume('probe', { limit: 1000, window: '1m' }), back()), { timeout: 5_000, interval: 200 })
        .toBe(1);
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('rate limiting on a Cluster where one master does not answer', () => {
  let servers: RedisTestCluster;
  let app: INestApplicationContext;
  beforeAll(async () => {
    servers = await RedisTestCluster.start({ masters: 3 });
    app = await startContext({ connection: { cluster: { nodes: servers.nodes } }, commandTimeout: '200ms' });
  });
  afterAll(async () => {
    await app?.close();
    await servers?.destroy();
  });

  it("fails open or closed only for callers on that master, and refunds the others' part of a call it failed", async () => {
    const limits = app.get(RateLimitService);
    const slots = (await app.get<Cluster>(REDIS_CLIENT).call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    // A caller's keys are tagged {rl:<caller>}: that tag's slot names the master holding them.
    const masterOf = (caller: string) =>
      slots.find(([from, to]) => calculateSlot(`rl:${caller}`) >= from && calculateSlot(`rl:${caller}`) <= to)![2][1];
    const paused = 'caller-on-paused-master';
    const live = Array.from({ length: 50 }, (_, i) => `caller-${i}`).find((caller) => masterOf(caller) !== masterOf(paused))!;
    const policy: RateLimitPolicy = { limit: 5, window: '1h', algorithm: 'fixed-window' };
    const both = limits.resolve({ ...policy, name: 'both' });
    const checks = [paused, live].map((caller) => ({ key: limits.keyOf(caller, 'shared', both), policy: both, cost: 1 }));
    expect(await limits.consume(paused, policy)).toMatchObject({ allowed: true, remaining: 4 });

    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      expect(await command(masterOf(paused), 'CLIENT PAUSE 1500 ALL')).toBe('+OK\r\n');
      expect(await limits.consume(paused, policy)).toMatchObject({ allowed: true, unavailable: true });
      await expect(limits.consume(paused, { ...policy, onStoreError: 'closed' })).rejects.toBeInstanceOf(RateLimitUnavailableError);
      expect(await limits.consume(live, policy)).toMatchObject({ allowed: true, remaining: 4 });
      expect((await limits.decide(checks)).map((decision) => decision.unavailable)).toEqual([true, true]);
      expect(warn.mock.calls.filter(([message]) => String(message).includes('unavailable to rate limiting'))).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
    }

    await waitFor(
      async () =>
        (await limits.consume(live, { ...policy, name: 'probe' })).unavailable !== true &&
        !(await limits.consume(paused, { ...policy, name: 'probe' })).unavailable,
      'the paused master to answer again',
      10_000,
    );
    // The live caller's part of the failed call was refunded: its shared counter is back to zero.
    expect(await limits.decide([checks[1]])).toMatchObject([{ allowed: true, remaining: 4 }]);
    // Timed-out commands are not withdrawn: the paused master ran each of them once when it woke
    // (two of the default policy, one shared), none twice.
    expect(await limits.consume(paused, policy)).toMatchObject({ allowed: true, remaining: 1 });
    expect(await limits.decide([checks[0]])).toMatchObject([{ allowed: true, remaining: 3 }]);
  });
});
