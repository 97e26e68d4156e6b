import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REDIS_CLIENT, RedisConnections, RedisScript } from '../../lib/index.js';
import { waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';
import { ownRedisServer } from '../support/own-redis-server.js';

describe('when Redis goes away', () => {
  const own = ownRedisServer();
  afterEach(() => vi.restoreAllMocks());

  it.each([
    ['the offline queue off (default)', false],
    ['the offline queue on', true],
  ])('commands fail, and work again once the server is back, with %s', async (_name, offlineQueue) => {
    const app = await startContext({
      connection: own.server.address,
      offlineQueue,
      commandTimeout: '300ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await redis.set('outage', 'before');

    await own.server.stop();
    await expect(redis.get('outage')).rejects.toThrow(/Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|max retries/i);
    await expect(redis.set('outage', 'during')).rejects.toThrow();

    await own.server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to reconnect', 10_000);
    // The restarted server kept nothing (no persistence), and no write from the outage arrived late.
    expect(await redis.get('outage')).toBeNull();
    await redis.set('outage', 'after');
    expect(await redis.get('outage')).toBe('after');
    await app.close();
  });

  it('startup goes on without Redis and the client connects when it appears', async () => {
    await own.server.stop();
    const app = await startContext({ connection: own.server.address, connectTimeout: '200ms', reconnect: { minDelay: '20ms', maxDelay: '100ms' } });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await expect(redis.ping()).rejects.toThrow();
    await own.server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to connect', 10_000);
    await app.close();
  });

  it('logs each connection state change once, not once per failed command or retry', async () => {
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: own.server.address, reconnect: { minDelay: '10ms', maxDelay: '20ms' } });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await own.server.stop();
    await Promise.all(Array.from({ length: 25 }, () => redis.get('x').catch(() => undefined)));
    await new Promise((resolve) => setTimeout(resolve, 300)); // a dozen reconnect attempts
    await own.server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to reconnect', 10_000);
    await app.close();
    const messages = (spy: typeof log) => spy.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('Redis connection'));
    expect(messages(log)).toEqual(['Redis connection "default" connected', 'Redis connection "default" reconnected', 'Redis connection "default" closed']);
    expect(messages(warn)).toHaveLength(1);
    expect(messages(warn)[0]).toMatch(/^Redis connection "default" is unavailable( \(.+\))?; reconnecting with backoff$/);
  });

  it('a subscription made while Redis is down takes effect once it is back', async () => {
    const app = await startContext({ connection: own.server.address, reconnect: { minDelay: '10ms', maxDelay: '50ms' } });
    const connections = app.get(RedisConnections);
    await own.server.stop();
    const subscriber = connections.subscriber();
    const received: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => received.push(message));
    const subscribed = subscriber.subscribe('outage-channel');
    await new Promise((resolve) => setTimeout(resolve, 300)); // several failed reconnect attempts
    await own.server.start();
    await expect(subscribed).resolves.toBe(1);
    await waitFor(async () => (await connections.get().publish('outage-channel', 'back').catch(() => 0)) === 1, 'the subscriber to be counted', 10_000);
    await expect.poll(() => received).toEqual(['back']);
    await app.close();
  });

  it('re-sends a script after a restart emptied the script cache', async () => {
    const script = new RedisScript('echo-key', "return redis.call('SET', KEYS[1], ARGV[1])");
    const app = await startContext({ connection: own.server.address, reconnect: { minDelay: '20ms', maxDelay: '100ms' } });
    const redis = app.get(RedisConnections).get();
    expect(await script.run(redis, ['restart'], ['before'])).toBe('OK');
    await own.server.stop();
    await own.server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to reconnect', 10_000);
    expect(await redis.script('EXISTS', script.sha1)).toEqual([0]);
    expect(await script.run(redis, ['restart'], ['after'])).toBe('OK');
    expect(await redis.get('restart')).toBe('after');
    await app.close();
  });
});
