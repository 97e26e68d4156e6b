import { firstValueFrom, lastValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisUnavailableError, StreamService } from '../../lib/index.js';
import { RedisTestServer } from '../support/redis-server.js';
import { QUICK_OUTAGES } from '../support/testing-app.js';
import { startServiceApp, type ServiceApp } from './microservices-app.js';

describe('RedisStreamsServer and RedisStreamsClient across a Redis restart (a server of its own, with an append-only file)', () => {
  let redis: RedisTestServer;
  let service: ServiceApp;
  beforeAll(async () => {
    redis = await RedisTestServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    service = await startServiceApp(redis.connection, { moduleOptions: QUICK_OUTAGES, server: { claimIdle: '1s' } });
  });
  afterAll(async () => {
    await service?.close();
    await redis?.destroy();
  });

  it('events in the middle of handling when Redis restarts are all handled; emit fails with 503 meanwhile; requests work again after', async () => {
    const { client, seen } = service;
    for (let n = 0; n < 200; n++) await lastValueFrom(client.emit('observed', n));
    await expect.poll(() => seen.events.length, { timeout: 10_000, interval: 10 }).toBeGreaterThanOrEqual(20);
    await redis.stop();
    const handledBeforeRestart = seen.events.length;
    await expect(lastValueFrom(client.emit('observed', 999))).rejects.toBeInstanceOf(RedisUnavailableError);
    await redis.start();
    const handled = () => new Set(seen.events.map((event) => event.data)).size;
    await expect.poll(handled, { timeout: 20_000, interval: 50 }).toBe(200);
    const streams = service.app.get(StreamService);
    await expect.poll(async () => (await streams.groupBacklog('ms:observed', 'math')).pending, { timeout: 10_000 }).toBe(0);
    expect(handledBeforeRestart).toBeLessThan(200);
    await expect
      .poll(() => firstValueFrom(service.client.send({ cmd: 'sum' }, [1, 2, 3])).catch(() => 'failed'), { timeout: 10_000 })
      .toBe(6);
    console.log(
      `[microservices restart] 200 events, ${handledBeforeRestart} handled before the restart, ${seen.events.length - 200} handled twice, 0 lost`,
    );
  });
});
