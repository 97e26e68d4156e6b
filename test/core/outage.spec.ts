import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_CLIENT } from '../../lib/index.js';
import { RedisServer, waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';

describe('when Redis goes away', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(() => server.destroy());

  it.each([
    ['the offline queue off (default)', false],
    ['the offline queue on', true],
  ])('commands fail, and work again once the server is back, with %s', async (_name, offlineQueue) => {
    const app = await startContext({
      connection: server.address,
      offlineQueue,
      commandTimeout: '300ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await redis.set('outage', 'before');

    await server.stop();
    await expect(redis.get('outage')).rejects.toThrow(/Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|max retries/i);
    await expect(redis.set('outage', 'during')).rejects.toThrow();

    await server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to reconnect', 10_000);
    // The restarted server kept nothing (no persistence), and no write from the outage arrived late.
    expect(await redis.get('outage')).toBeNull();
    await redis.set('outage', 'after');
    expect(await redis.get('outage')).toBe('after');
    await app.close();
  });

  it('startup goes on without Redis and the client connects when it appears', async () => {
    await server.stop();
    const app = await startContext({ connection: server.address, connectTimeout: '200ms', reconnect: { minDelay: '20ms', maxDelay: '100ms' } });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await expect(redis.ping()).rejects.toThrow();
    await server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to connect', 10_000);
    await app.close();
  });
});
