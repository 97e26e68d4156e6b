import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisUnavailableError, StreamService, type RedisPatternsModuleOptions } from '../../lib/index.js';
import { freePort, HOST, waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';
import { ownRedisServer } from '../support/own-redis-server.js';

describe('a stream consumer when Redis is away', () => {
  const own = ownRedisServer();
  afterEach(() => vi.restoreAllMocks());

  it("starts anyway, logs the outage once in the library's words, and handles events once Redis is back, also after a restart", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await own.server.stop();
    const app = await startContext({
      connection: own.server.address,
      connectTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const streams = app.get(StreamService);
    const handled: unknown[] = [];
    await Promise.all(
      ['first', 'second'].map((consumer) =>
        streams.consume('resilient', 'g', (event) => void handled.push(event), { block: '100ms', consumer }),
      ),
    );
    const added = await streams.add('resilient', 'too early').catch((caught: unknown) => caught);
    expect(added).toBeInstanceOf(RedisUnavailableError);
    expect(added).toMatchObject({ statusCode: 503, feature: 'streams', outage: 'disconnected' });
    await new Promise((resolve) => setTimeout(resolve, 300)); // the consumers wait, without a word

    await own.server.start();
    await waitFor(
      async () =>
        await streams.add('resilient', 'first').then(
          () => true,
          () => false,
        ),
      'Redis to accept writes',
      10_000,
    );
    await expect.poll(() => handled, { timeout: 10_000 }).toEqual(['first']);

    await own.server.stop();
    await own.server.start();
    await waitFor(
      async () =>
        await streams.add('resilient', 'second').then(
          () => true,
          () => false,
        ),
      'Redis to accept writes again',
      10_000,
    );
    // The restarted server kept nothing: the group is created again and the new event handled.
    await expect.poll(() => handled, { timeout: 10_000 }).toEqual(['first', 'second']);
    await app.close();

    const messages = warn.mock.calls.map(([message]) => String(message));
    // Two outages, each logged once at most (the second may come within the quiet second of the first).
    const outages = messages.filter((message) => message.includes('to streams'));
    expect(outages.length).toBeGreaterThanOrEqual(1);
    expect(outages.length).toBeLessThanOrEqual(2);
    for (const line of outages) {
      expect(line).toBe(
        'Redis connection "default" is unavailable to streams (no connection to the server); add() fails with RedisUnavailableError (503) and consumers pause until it is back',
      );
    }
    expect(messages.filter((message) => message.includes('Consumer'))).toEqual([]);
    expect(messages.join('\n')).not.toMatch(/Stream isn't writeable|enableOfflineQueue|Connection is closed/);
  }, 40_000);
});

describe.each([
  { topology: 'standalone', connection: (port: number): RedisPatternsModuleOptions['connection'] => ({ host: HOST, port }) },
  {
    topology: 'cluster',
    connection: (port: number): RedisPatternsModuleOptions['connection'] => ({ cluster: { nodes: [{ host: HOST, port }] } }),
  },
])('streams with no Redis to reach, on $topology', ({ connection }) => {
  afterEach(() => vi.restoreAllMocks());

  it("add() and deadLetters() reject with RedisUnavailableError (503); consumers start and log the outage once, in the library's words", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({
      connection: connection(await freePort()),
      connectTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const streams = app.get(StreamService);
    for (const consumer of ['a', 'b', 'c']) await streams.consume('orders', 'g', () => undefined, { consumer, block: '100ms' });
    await expect(streams.add('orders', 1)).rejects.toMatchObject({ statusCode: 503, feature: 'streams', outage: 'disconnected' });
    await expect(streams.deadLetters('orders')).rejects.toBeInstanceOf(RedisUnavailableError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await app.close();
    const messages = warn.mock.calls.map(([message]) => String(message));
    expect(messages.filter((message) => message.includes('streams'))).toEqual([
      'Redis connection "default" is unavailable to streams (no connection to the server); add() fails with RedisUnavailableError (503) and consumers pause until it is back',
    ]);
    expect(messages.join('\n')).not.toMatch(/Stream isn't writeable|Cluster isn't ready|enableOfflineQueue/);
  });
});
