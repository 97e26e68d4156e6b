import { Injectable, Logger } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OnMessage, PubSubService, RedisConnections, RedisUnavailableError, type RedisPatternsModuleOptions } from '../../lib/index.js';
import { freePort, HOST, RedisTestCluster, waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { prefixOf, redisSubscribers } from './subscribers.js';

describe('when the server restarts', () => {
  const own = ownRedisServer();

  it('restores subscriptions, says that messages may have been missed, and completes them at shutdown', async () => {
    const app = await startContext({ connection: own.server.address, reconnect: { minDelay: '20ms', maxDelay: '100ms' } });
    const pubsub = app.get(PubSubService);
    const received: string[] = [];
    let completed = false;
    pubsub.subscribe<string>('news').subscribe({ next: (message) => received.push(message), complete: () => (completed = true) });
    const reconnected = firstValueFrom(pubsub.reconnected);
    await waitFor(async () => (await pubsub.publish('news', 'before')) === 1, 'the subscription');

    await own.server.stop();
    await expect(pubsub.publish('news', 'lost')).rejects.toMatchObject({ statusCode: 503, feature: 'pub/sub', outage: 'disconnected' });
    await own.server.start();
    await reconnected;
    await waitFor(async () => (await pubsub.publish('news', 'after').catch(() => 0)) === 1, 'the subscription to be restored', 10_000);
    await expect.poll(() => received.at(-1)).toBe('after');
    expect(received[0]).toBe('before');

    await app.close();
    expect(completed).toBe(true);
  });
});

describe('@OnMessage when Redis is down at startup', () => {
  const own = ownRedisServer();
  const received: unknown[] = [];

  @Injectable()
  class Listener {
    @OnMessage('late')
    listen(message: unknown) {
      received.push(message);
    }
  }

  it('subscribes once Redis is up, and publishing meanwhile fails at once', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await own.server.stop();
    const app = await startContext(
      { connection: own.server.address, connectTimeout: '200ms', reconnect: { minDelay: '20ms', maxDelay: '100ms' } },
      { providers: [Listener] },
    );
    const pubsub = app.get(PubSubService);
    const early = await pubsub.publish('late', 'too early').catch((caught: unknown) => caught);
    expect(early).toBeInstanceOf(RedisUnavailableError);
    expect((early as RedisUnavailableError).getStatus()).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // longer than the command timeout
    await own.server.start();
    await waitFor(async () => (await pubsub.publish('late', 'hello').catch(() => 0)) === 1, 'the handler to be subscribed', 10_000);
    await expect.poll(() => received).toEqual(['hello']);
    await app.close();
    vi.restoreAllMocks();
  });
});

describe.each([
  { topology: 'standalone', connection: (port: number): RedisPatternsModuleOptions['connection'] => ({ host: HOST, port }) },
  {
    topology: 'cluster',
    connection: (port: number): RedisPatternsModuleOptions['connection'] => ({ cluster: { nodes: [{ host: HOST, port }] } }),
  },
])('pub/sub with no Redis to reach, on $topology', ({ connection }) => {
  it("publish() rejects at once with RedisUnavailableError (503), logged once in the library's words; a subscription waits", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({
      connection: connection(await freePort()),
      connectTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const pubsub = app.get(PubSubService);
    let failed: unknown;
    pubsub.subscribe('waiting').subscribe({ error: (error: unknown) => (failed = error) });
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const error = await pubsub.publish('news', i).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error).toMatchObject({ statusCode: 503, feature: 'pub/sub', outage: 'disconnected' });
      expect(performance.now() - started).toBeLessThan(500);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(failed).toBeUndefined();
    await app.close();
    const messages = warn.mock.calls.map(([message]) => String(message));
    expect(messages.filter((message) => message.includes('pub/sub'))).toEqual([
      'Redis connection "default" is unavailable to pub/sub (no connection to the server); publish() fails with RedisUnavailableError (503) and subscriptions wait until it is back',
    ]);
    expect(messages.join('\n')).not.toMatch(/Stream isn't writeable|Cluster isn't ready|enableOfflineQueue|not connected yet/);
    vi.restoreAllMocks();
  });
});

describe('on a cluster whose node restarts', () => {
  let servers: RedisTestCluster;
  beforeAll(async () => {
    servers = await RedisTestCluster.start({ masters: 3 });
  });
  afterAll(() => servers?.destroy());

  it('restores the sharded subscription and says that messages may have been missed', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({
      connection: { cluster: { nodes: servers.nodes } },
      reconnect: { minDelay: '20ms', maxDelay: '200ms' },
    });
    const pubsub = app.get(PubSubService);
    const received: string[] = [];
    pubsub.subscribe<string>('restart').subscribe((message) => received.push(message));
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + 'restart', true)) === 1, 'the subscription');
    await pubsub.publish('restart', 'before');

    const slot = calculateSlot(prefixOf(app) + 'restart');
    const slots = (await app.get(RedisConnections).get().cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    const ownerPort = slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
    const owner = servers.servers.find((server) => server.port === ownerPort)!;
    const reconnected = firstValueFrom(pubsub.reconnected);
    await owner.stop();
    await owner.start();
    await reconnected;
    await waitFor(async () => (await pubsub.publish('restart', 'after').catch(() => 0)) === 1, 'the subscription to be restored', 20_000);
    await expect.poll(() => received.at(-1)).toBe('after');
    expect(received[0]).toBe('before');
    await app.close();
    vi.restoreAllMocks();
  }, 60_000);
});
