import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import { REDIS_CLIENT, RedisConnections, RedisScript } from '../../lib/index.js';
import { command, waitFor } from '../support/redis-server.js';
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
    await expect(redis.get('outage')).rejects.toThrow(
      /Stream isn't writeable|Connection is closed|Command timed out|ECONNREFUSED|max retries/i,
    );
    await expect(redis.set('outage', 'during')).rejects.toThrow();

    await own.server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to reconnect', 10_000);
    // The restarted server kept nothing (no persistence), and no write from the outage arrived late.
    expect(await redis.get('outage')).toBeNull();
    await redis.set('outage', 'after');
    expect(await redis.get('outage')).toBe('after');
    await app.close();
  });

  it('startup goes on without Redis, says at once that the connection was refused, and connects when it appears', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    await own.server.stop();
    const started = performance.now();
    const app = await startContext({
      connection: own.server.address,
      connectTimeout: '2s',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    expect(performance.now() - started).toBeLessThan(1_500);
    const redis = app.get<Redis>(REDIS_CLIENT);
    await expect(redis.ping()).rejects.toThrow();
    await own.server.start();
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to connect', 10_000);
    await app.close();
    const warnings = connectionMessages(warn);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      new RegExp(
        `^Redis connection "default" could not connect \\(connection refused by 127\\.0\\.0\\.1:${own.server.port}\\) after \\d+ms; starting without it\\. Commands fail until it connects; it keeps retrying with backoff\\.$`,
      ),
    );
    expect(Number(/after (\d+)ms/.exec(warnings[0])![1])).toBeLessThan(1_500);
    // It never was connected: the first success is "connected", not "reconnected".
    expect(connectionMessages(log)).toEqual(['Redis connection "default" connected', 'Redis connection "default" closed']);
  });

  it('says the connection is not ready after connectTimeout only when the server did not answer in time', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await command(own.server.port, 'CLIENT PAUSE 1500 ALL');
    const started = performance.now();
    const app = await startContext({ connection: own.server.address, connectTimeout: '300ms', commandTimeout: '5s' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    const redis = app.get<Redis>(REDIS_CLIENT);
    await waitFor(async () => (await redis.ping().catch(() => 'down')) === 'PONG', 'the client to connect once the pause ends', 10_000);
    await app.close();
    expect(connectionMessages(warn)).toEqual([
      'Redis connection "default" is not ready after 300ms; starting without it. Commands fail until it connects; it keeps retrying with backoff.',
    ]);
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
    expect(connectionMessages(log)).toEqual([
      'Redis connection "default" connected',
      'Redis connection "default" reconnected',
      'Redis connection "default" closed',
    ]);
    // In the library's words: the server closed the connection, later attempts were refused.
    expect(connectionMessages(warn)).toEqual([
      'Redis connection "default" is unavailable (the connection was closed); reconnecting with backoff',
    ]);
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
    await waitFor(
      async () =>
        (await connections
          .get()
          .publish('outage-channel', 'back')
          .catch(() => 0)) === 1,
      'the subscriber to be counted',
      10_000,
    );
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

function connectionMessages(spy: MockInstance): string[] {
  return spy.mock.calls.map(([message]) => String(message)).filter((message) => message.startsWith('Redis connection'));
}
