import { Injectable, Logger, Scope, type INestApplicationContext } from '@nestjs/common';
import { firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { masterNodes } from '../../lib/core/redis-client.js';
import {
  InvalidOptionError,
  OnMessage,
  PubSubService,
  RedisConnections,
  RedisPatternsError,
  type PatternMessage,
} from '../../lib/index.js';
import { waitFor } from '../support/redis-server.js';
import { clusterConnection, startContext, topologies } from '../support/testing-app.js';
import { prefixOf, redisSubscribers } from './subscribers.js';

describe.each(topologies)('PubSubService on $topology', ({ topology, connection }) => {
  const sharded = topology === 'cluster';
  let app: INestApplicationContext;
  let pubsub: PubSubService;
  beforeAll(async () => {
    app = await startContext({ connection: connection() });
    pubsub = app.get(PubSubService);
  });
  afterAll(() => app.close());
  afterEach(() => vi.restoreAllMocks());

  it('delivers each message to every subscriber over one Redis subscription, and ends it with the last unsubscribe', async () => {
    const channel = `orders-${topology}`;
    const first: unknown[] = [];
    const second: unknown[] = [];
    const a = pubsub.subscribe(channel).subscribe((message) => first.push(message));
    const b = pubsub.subscribe(channel).subscribe((message) => second.push(message));
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + channel, sharded)) === 1, 'the Redis subscription');

    const order = { id: 1, at: new Date('2026-01-01T00:00:00Z'), lines: new Map([['sku-1', 2]]), note: undefined };
    expect(await pubsub.publish(channel, order)).toBe(1);
    await expect.poll(() => [first.length, second.length]).toEqual([1, 1]);
    expect(first[0]).toStrictEqual(order);

    a.unsubscribe();
    expect(await redisSubscribers(app, prefixOf(app) + channel, sharded)).toBe(1);
    await pubsub.publish(channel, 'only b');
    await expect.poll(() => second).toEqual([order, 'only b']);
    expect(first).toHaveLength(1);

    b.unsubscribe();
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + channel, sharded)) === 0, 'the Redis subscription to end');
    expect(await pubsub.publish(channel, 'nobody')).toBe(0);
  });

  it('keeps channels apart, across many slots', async () => {
    const channels = Array.from({ length: 20 }, (_, i) => `spread-${topology}-${i}`);
    const received = Promise.all(channels.map((channel) => firstValueFrom(pubsub.subscribe<string>(channel))));
    await waitFor(
      async () => (await Promise.all(channels.map((c) => redisSubscribers(app, prefixOf(app) + c, sharded)))).every((n) => n === 1),
      'all subscriptions',
    );
    await Promise.all(channels.map((channel) => pubsub.publish(channel, `to ${channel}`)));
    expect(await received).toEqual(channels.map((channel) => `to ${channel}`));
  });

  it('drops a message the codec cannot decode, logs it without its content, and goes on', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const channel = `malformed-${topology}`;
    const messages = firstValueFrom(pubsub.subscribe(channel).pipe(take(1), toArray()));
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + channel, sharded)) === 1, 'the subscription');
    const client = app.get(RedisConnections).get();
    const redisChannel = prefixOf(app) + channel;
    await (sharded ? client.spublish(redisChannel, '{"secret": tok') : client.publish(redisChannel, '{"secret": tok'));
    await pubsub.publish(channel, { fine: true });
    expect(await messages).toEqual([{ fine: true }]);
    const logged = warn.mock.calls.map(([message]) => String(message));
    expect(logged).toContain(`Dropped a message on "${redisChannel}" that the codec could not decode`);
    expect(logged.join('\n')).not.toContain('secret');
  });

  it('refuses channels and patterns that are empty or not well-formed Unicode, naming them', async () => {
    // As UTF-8 both would be "news\uFFFD": two channels would be one.
    await expect(pubsub.publish('news\uD800', 1)).rejects.toMatchObject({ option: 'channel' });
    await expect(pubsub.publish('', 1)).rejects.toThrow(InvalidOptionError);
    expect(() => pubsub.subscribe('news\uDC00')).toThrow(/^Invalid option "channel": expected well-formed Unicode text/);
    expect(() => pubsub.psubscribe('news.\uDC00*')).toThrow(/^Invalid option "pattern"/);
  });

  it('delivers messages from one app instance to another', async () => {
    const other = await startContext({ connection: connection(), keyPrefix: prefixOf(app) });
    const channel = `cross-${topology}`;
    const received = firstValueFrom(other.get(PubSubService).subscribe<number>(channel));
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + channel, sharded)) === 1, 'the other instance to subscribe');
    await pubsub.publish(channel, 7);
    expect(await received).toBe(7);
    await other.close();
  });
});

describe('pattern subscriptions', () => {
  it.each([
    ['standalone', () => startContext({ connection: topologies[0].connection() })],
    ['a cluster without sharding', () => startContext({ connection: clusterConnection(), pubsub: { sharded: false } })],
  ])('receive every matching channel with its name, on %s', async (_name, start) => {
    const app = await start();
    const pubsub = app.get(PubSubService);
    const received = firstValueFrom(pubsub.psubscribe<number>('events.*').pipe(take(2), toArray()));
    // PUBLISH on a cluster counts only the receivers on the node it reached, so ask every node.
    const patterns = async () =>
      (await Promise.all(masterNodes(app.get(RedisConnections).get()).map((node) => node.call('PUBSUB', 'NUMPAT')))).map(Number);
    await waitFor(async () => (await patterns()).some((count) => count > 0), 'the pattern subscription');
    await pubsub.publish('events.a', 0);
    await pubsub.publish('other.b', 99);
    await pubsub.publish('events.b', 2);
    const messages: PatternMessage<number>[] = await received;
    expect(messages).toEqual([
      { channel: 'events.a', message: 0 },
      { channel: 'events.b', message: 2 },
    ]);
    await app.close();
  });

  it('fail with a clear error when the cluster shards pub/sub', async () => {
    const app = await startContext({ connection: clusterConnection() });
    const error = await firstValueFrom(app.get(PubSubService).psubscribe('events.*')).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisPatternsError);
    expect((error as Error).message).toMatch(/pattern subscriptions cannot be sharded\. Set pubsub\.sharded to false/);
    await app.close();
  });
});

describe('@OnMessage', () => {
  const calls: unknown[] = [];

  @Injectable()
  class Handlers {
    failedOnce = false;

    @OnMessage('greetings')
    greet(message: string, channel: string) {
      calls.push(['greet', message, channel]);
    }

    @OnMessage('greetings')
    async flaky(message: string) {
      if (!this.failedOnce) {
        this.failedOnce = true;
        throw new Error(`cannot handle ${message}`);
      }
      calls.push(['flaky', message]);
    }

    @OnMessage({ pattern: 'greet*' })
    any(message: string, channel: string) {
      calls.push(['pattern', message, channel]);
    }
  }

  @Injectable({ scope: Scope.REQUEST })
  class RequestScoped {
    @OnMessage('greetings')
    never(message: unknown) {
      calls.push(['request-scoped', message]);
    }
  }

  it('calls every decorated method with the message and channel, logs handler errors and goes on, skips request-scoped providers', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const app = await startContext({ connection: topologies[0].connection() }, { providers: [Handlers, RequestScoped] });
    const pubsub = app.get(PubSubService);
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + 'greetings', false)) === 1, 'the handlers to subscribe');

    await pubsub.publish('greetings', 'hello');
    await pubsub.publish('greetings', 'again');
    await expect.poll(() => calls.length).toBe(5);
    expect(calls).toEqual(
      expect.arrayContaining([
        ['greet', 'hello', 'greetings'],
        ['greet', 'again', 'greetings'],
        ['flaky', 'again'],
        ['pattern', 'hello', 'greetings'],
        ['pattern', 'again', 'greetings'],
      ]),
    );
    expect(error.mock.calls.map(([message]) => String(message))).toContain(
      '@OnMessage Handlers.flaky failed on a message from "greetings": cannot handle hello',
    );
    expect(warn.mock.calls.map(([message]) => String(message))).toContain(
      '@OnMessage on RequestScoped.never is ignored: its class is request-scoped or transient, so there is no single instance to call.',
    );
    const other = await startContext({ connection: topologies[0].connection(), keyPrefix: prefixOf(app) });
    await app.close();
    expect(await other.get(PubSubService).publish('greetings', 'after close')).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls).toHaveLength(5);
    await other.close();
    vi.restoreAllMocks();
  });
});

describe('subscription bookkeeping', () => {
  it('an Observable unsubscribed before its SUBSCRIBE completes leaves no Redis subscription behind', async () => {
    const app = await startContext({ connection: topologies[0].connection() });
    const pubsub = app.get(PubSubService);
    for (let i = 0; i < 5; i++) pubsub.subscribe('flicker').subscribe().unsubscribe();
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + 'flicker', false)) === 0, 'no subscription');
    const received = firstValueFrom(pubsub.subscribe<string>('flicker'));
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + 'flicker', false)) === 1, 'one subscription');
    await pubsub.publish('flicker', 'steady');
    expect(await received).toBe('steady');
    await app.close();
  });

  it('shuts down without trying to unsubscribe over closing connections', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: topologies[0].connection() });
    const pubsub = app.get(PubSubService);
    const subscriptions = ['a', 'b', 'c'].map((channel) => pubsub.subscribe(channel).subscribe());
    await waitFor(async () => (await redisSubscribers(app, prefixOf(app) + 'c', false)) === 1, 'the subscriptions');
    await app.close();
    expect(subscriptions.every((subscription) => subscription.closed)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(warn.mock.calls.map(([m]) => String(m)).filter((m) => m.includes('subscription'))).toEqual([]);
    vi.restoreAllMocks();
  });
});
