import { Controller, Logger, Post, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  LockLostError,
  LockNotAcquiredError,
  LockService,
  RedisConnections,
  RedisKeys,
  RedisPatternsModule,
  WithSemaphore,
} from '../../lib/index.js';
import { waitFor } from '../support/redis-server.js';
import { QUICK_OUTAGES, uniquePrefix } from '../support/testing-app.js';
import { ownRedisSetups, type OwnRedis } from '../support/own-redis.js';

@Controller('reports')
class ReportsController {
  runs = 0;

  @Post('sales')
  @WithSemaphore('sales-report', { permits: 2 })
  async sales(): Promise<{ ran: true }> {
    this.runs++;
    return { ran: true };
  }
}

/** Servers that keep their data over a restart (AOF), so permits held before an outage are still there after it. */
describe.each(ownRedisSetups(['--appendonly', 'yes']))('semaphores while Redis is down, on $topology', ({ start }) => {
  let redis: OwnRedis;
  let app: INestApplication;
  let locks: LockService;
  let base: string;
  const warnings: string[] = [];
  const post = async (path: string) => {
    const response = await fetch(`${base}${path}`, { method: 'POST' });
    return { status: response.status, body: (await response.json()) as unknown };
  };
  beforeAll(async () => {
    redis = await start();
    const moduleRef = await Test.createTestingModule({
      imports: [RedisPatternsModule.forRoot({ connection: redis.connection, keyPrefix: uniquePrefix(), ...QUICK_OUTAGES })],
      controllers: [ReportsController],
    }).compile();
    app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: ['error'] });
    vi.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
    locks = app.get(LockService);
  });
  afterAll(async () => {
    await app?.close();
    vi.restoreAllMocks();
    await redis?.destroy();
  });

  it("fails acquisitions with 'store-unavailable' (503 on a controller, the method not run), and aborts holders' signals when their lease runs out", async () => {
    const semaphore = locks.semaphore('sales-report', 2);
    expect(await post('/reports/sales')).toEqual({ status: 201, body: { ran: true } });
    const holder = await semaphore.acquire({ ttl: '1s', autoExtend: true });
    const aborted = new Promise<unknown>((resolve) => holder.signal.addEventListener('abort', () => resolve(holder.signal.reason)));
    const server = await redis.serverOf(`${app.get(RedisKeys).prefix}sem:{sales-report}`);
    await server.stop();

    const error = await semaphore.acquire().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ keys: ['sales-report'], reason: 'store-unavailable' });
    expect((error as LockNotAcquiredError).getStatus()).toBe(503);
    await expect(semaphore.tryAcquire()).rejects.toMatchObject({ reason: 'store-unavailable' });
    await expect(semaphore.available()).rejects.toMatchObject({ name: 'RedisUnavailableError', statusCode: 503 });
    const runs = app.get(ReportsController).runs;
    expect(await post('/reports/sales')).toMatchObject({ status: 503, body: { statusCode: 503, reason: 'store-unavailable' } });
    expect(app.get(ReportsController).runs).toBe(runs);

    // Renewals fail while Redis is away: the holder learns the lease is gone once it runs out.
    const reason = await aborted;
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as Error).message).toBe('Lock "sales-report" was lost: its lease ran out');
    expect(holder.lost).toBe(true);
    expect(await holder.release()).toBe(false);

    const outages = warnings.filter((message) => message.includes('is unavailable to locks'));
    expect(outages).toHaveLength(1);
    expect(warnings.filter((message) => message.startsWith('Could not'))).toEqual([]);

    await server.start();
    await waitFor(async () => app.get(RedisConnections).get().status === 'ready', 'the app to be connected again', 10_000);
    await waitFor(async () => (await post('/reports/sales')).status === 201, 'the route to answer again', 10_000);
    expect(await semaphore.available()).toBe(2);
  }, 60_000);

  it("gives back a permit released while Redis was down as soon as it is back, before its lease ends (on Redis's clock)", async () => {
    const semaphore = locks.semaphore('kept-over-restart', 1);
    const holders = `${app.get(RedisKeys).prefix}sem:{kept-over-restart}`;
    const server = await redis.serverOf(holders);
    const observer = app.get(RedisConnections).get();
    const permit = await semaphore.acquire({ ttl: '30s' });
    const [, leaseEnd] = await observer.zrange(holders, '0', '-1', 'WITHSCORES');
    await server.stop();
    expect(await permit.release()).toBe(false);
    await server.start();
    // The server kept the holder over its restart: only the retried release removes it.
    await waitFor(async () => (await semaphore.available().catch(() => 0)) === 1, 'the permit to be given back', 20_000);
    const [seconds, micros] = await observer.time();
    expect(Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)).toBeLessThan(Number(leaseEnd));
    const next = await semaphore.acquire();
    expect(next.fencingToken).toBe(permit.fencingToken + 1);
    await next.release();
  }, 60_000);
});
