import { ModuleRef } from '@nestjs/core';
import { ClientsModule, RpcException, type ClientProxy } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, scan, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  RedisConnections,
  RedisPatternsModule,
  RedisHealthIndicator,
  RedisKeys,
  StreamService,
} from '../../lib/index.js';
import { RedisStreamsClient, RedisStreamsServer, RedisStreamsTimeoutError } from '../../lib/microservices/index.js';
import { scanKeys } from '../support/scan.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';
import { startServiceApp, type ServiceApp } from './microservices-app.js';

describe.each(topologies)('RedisStreamsServer and RedisStreamsClient, on $topology', ({ connection }) => {
  const apps: ServiceApp[] = [];
  const start = async (options: Parameters<typeof startServiceApp>[1] = {}) => {
    const started = await startServiceApp(connection(), options);
    apps.push(started);
    return started;
  };
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it("answers requests as Nest's transporters do: sync, async, observable, several values, object patterns, concurrent", async () => {
    const { client } = await start();
    expect(await firstValueFrom(client.send({ cmd: 'sum' }, [1, 2, 3, 4, 5]))).toBe(15);
    expect(await firstValueFrom(client.send('asyncSum', [1, 2, 3, 4, 5]))).toBe(15);
    expect(await firstValueFrom(client.send('streamSum', [1, 2, 3, 4, 5]))).toBe(15);
    expect(await lastValueFrom(client.send<number>('streaming', [1, 2, 3, 4, 5]).pipe(toArray()))).toEqual([1, 2, 3, 4, 5]);
    expect(await lastValueFrom(client.send<number>('streaming', [1, 2, 3, 4, 5]).pipe(scan((a, b) => a + b)))).toBe(15);
    expect(await lastValueFrom(client.send('nothing', []).pipe(toArray()))).toEqual([]);
    const tabs = Array.from({ length: 50 }, (_, k) => Array.from({ length: 10 }, (_, i) => k * 10 + i));
    const sums = await Promise.all(tabs.map((tab) => firstValueFrom(client.send<number>({ cmd: 'sum' }, tab))));
    expect(sums).toEqual(tabs.map((tab) => tab.reduce((a, b) => a + b, 0)));
  });

  it('gives handlers a context with the pattern, stream, entry id, group and delivery count', async () => {
    const { client, seen } = await start();
    expect(await firstValueFrom(client.send('context', {}))).toEqual({
      pattern: 'context',
      stream: 'ms:context',
      group: 'math',
      deliveries: 1,
    });
    const entryId = await lastValueFrom(client.emit('notification', { hello: 'world' }));
    await expect.poll(() => seen.events.length).toBe(1);
    expect(seen.events[0]).toEqual({
      data: { hello: 'world' },
      stream: 'ms:notification',
      entryId,
      group: 'math',
      deliveries: 1,
      pattern: 'notification',
    });
  });

  it('brings RpcException payloads to the requester, and other errors as Nest hides them', async () => {
    const { client } = await start();
    await expect(firstValueFrom(client.send('refuse', { code: 'E42' }))).rejects.toEqual({ code: 'E42', message: 'refused' });
    await expect(firstValueFrom(client.send('crash', {}))).rejects.toEqual({ status: 'error', message: 'Internal server error' });
    expect(new RpcException('x')).toBeInstanceOf(Error);
  });

  it("answers a pattern no handler serves on a shared stream with Nest's words", async () => {
    const { client } = await start({ server: { streamOf: () => 'ms:all' }, client: { streamOf: () => 'ms:all' } });
    expect(await firstValueFrom(client.send({ cmd: 'sum' }, [1, 2]))).toBe(3);
    await expect(firstValueFrom(client.send('unknown', {}))).rejects.toBe(
      'There is no matching message handler defined in the remote service.',
    );
  });

  it('fails a request without a reply in time with RedisStreamsTimeoutError, and servers skip requests past their deadline', async () => {
    // The never-answering handler is still in flight at close: the shutdown waits for it only this long.
    const { client, app } = await start({ client: { timeout: '300ms' }, moduleOptions: { shutdownTimeout: '100ms' } });
    const error = await firstValueFrom(client.send('never', {})).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisStreamsTimeoutError);
    expect(error).toMatchObject({ pattern: 'never', timeoutMs: 300, message: 'No reply to "never" within 300ms.' });
    // A request read after its deadline is acknowledged unanswered.
    const streams = app.get(StreamService);
    await streams.add('ms:context', {
      packet: { pattern: 'context', data: {}, id: 'late' },
      replyTo: 'ms-reply:late',
      deadline: Date.now() - 1,
    });
    await expect.poll(async () => (await streams.groupBacklog('ms:context', 'math')).pending).toBe(0);
    expect(
      await app
        .get(RedisConnections)
        .get()
        .exists(app.get(RedisKeys).tagged(['stream', 'ms-reply:late'])),
    ).toBe(0);
  });

  it('acknowledges an event only once its observable completes; retries a failing one with backoff; counts deliveries', async () => {
    const { client, seen, app } = await start();
    await lastValueFrom(client.emit('flaky', { n: 1, failTimes: 2 }));
    await lastValueFrom(client.emit('observed', 7));
    await expect.poll(() => seen.events.map((event) => event.data)).toEqual(expect.arrayContaining([7, { n: 1, failTimes: 2 }]));
    expect(seen.events.find((event) => event.pattern === 'flaky')?.deliveries).toBe(3);
    const streams = app.get(StreamService);
    await expect.poll(async () => (await streams.groupBacklog('ms:flaky', 'math')).pending).toBe(0);
    expect((await streams.groupBacklog('ms:observed', 'math')).pending).toBe(0);
  });

  it('moves a poison event to the dead letters after maxDeliveries, with its error, and goes on', async () => {
    const { client, seen, app } = await start({ server: { maxDeliveries: 3 } });
    const poisonId = await lastValueFrom(client.emit('flaky', { n: 1, failTimes: 100 }));
    await lastValueFrom(client.emit('flaky', { n: 2, failTimes: 0 }));
    const streams = app.get(StreamService);
    await expect.poll(async () => (await streams.deadLetters('ms:flaky')).length).toBe(1);
    const [dead] = await streams.deadLetters('ms:flaky');
    expect(dead).toMatchObject({
      originalId: poisonId,
      group: 'math',
      deliveries: 3,
      reason: 'max-deliveries',
      error: 'Internal server error',
    });
    expect(dead.event).toMatchObject({ packet: { pattern: 'flaky', data: { n: 1, failTimes: 100 } } });
    expect(seen.failures.get(1)).toBe(3);
    expect(seen.events.map((event) => event.data)).toEqual([{ n: 2, failTimes: 0 }]);
    expect(await streams.groupBacklog('ms:flaky', 'math')).toMatchObject({ pending: 0, deadLetters: 1 });
    const health = await app.get(RedisHealthIndicator).isHealthy('redis');
    const streamsReport = (health.redis['microservice:math'] as { streams: { stream: string; deadLetters: number; pending: number }[] })
      .streams;
    expect(streamsReport.find((report) => report.stream === 'ms:flaky')).toMatchObject({ patterns: ['flaky'], pending: 0, deadLetters: 1 });
  });

  it('handles events emitted while no instance of the service ran, once it starts', async () => {
    const keyPrefix = uniquePrefix();
    const producer = await start({ keyPrefix, listen: false });
    const ids = [];
    for (let n = 0; n < 20; n++) ids.push(await lastValueFrom(producer.client.emit('notification', n)));
    const { seen } = await start({ keyPrefix });
    await expect.poll(() => seen.events.length).toBe(20);
    expect(seen.events.map((event) => event.data).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(seen.events.map((event) => event.entryId).sort()).toEqual([...ids].sort());
  });

  it('work-queue: one instance of the service gets each event; broadcast: every running instance gets every event', async () => {
    const keyPrefix = uniquePrefix();
    const queued = [await start({ keyPrefix }), await start({ keyPrefix })];
    for (let n = 0; n < 40; n++) await lastValueFrom(queued[0].client.emit('notification', n));
    await expect.poll(() => queued[0].seen.events.length + queued[1].seen.events.length).toBe(40);
    const broadcastPrefix = uniquePrefix();
    const everyone = [
      await start({ keyPrefix: broadcastPrefix, server: { mode: 'broadcast' } }),
      await start({ keyPrefix: broadcastPrefix, server: { mode: 'broadcast' } }),
    ];
    for (let n = 0; n < 10; n++) await lastValueFrom(everyone[0].client.emit('notification', n));
    // Every instance gets every event once (handled 4 at a time, so not necessarily in order).
    for (const { seen } of everyone)
      await expect
        .poll(() => seen.events.map((event) => Number(event.data)).sort((a, b) => a - b))
        .toEqual(Array.from({ length: 10 }, (_, n) => n));
    const [groupA, groupB] = everyone.map(({ seen }) => seen.events[0].group);
    expect(groupA).not.toBe(groupB);
    // A closed broadcast instance deletes its group.
    await everyone[0].close();
    apps.splice(apps.indexOf(everyone[0]), 1);
    const groups = (await everyone[1].app
      .get(RedisConnections)
      .get()
      .xinfo('GROUPS', everyone[1].app.get(RedisKeys).tagged(['stream', 'ms:notification']))) as unknown[][];
    expect(groups.map((group) => String(group[1]))).toEqual([groupB]);
  });

  it('trims request streams and lets reply streams expire', async () => {
    const { client, app } = await start({ client: { trim: { maxLen: 10 } }, server: { replyExpire: '30s', replyMaxLen: 5 } });
    const redis = app.get(RedisConnections).get();
    const keys = app.get(RedisKeys);
    for (let n = 0; n < 300; n++) await lastValueFrom(client.emit('notification', n));
    expect(await redis.xlen(keys.tagged(['stream', 'ms:notification']))).toBeLessThan(300);
    const values = await lastValueFrom(
      client
        .send<number>(
          'streaming',
          Array.from({ length: 300 }, (_, n) => n),
        )
        .pipe(toArray()),
    );
    expect(values).toHaveLength(300);
    // This process's one reply stream, found by a whole SCAN (the shared servers hold many keys).
    const replyKeys = await scanKeys(redis, `${keys.prefix}{stream:ms-reply*`);
    expect(replyKeys).toHaveLength(1);
    const [replyKey] = replyKeys;
    expect(await redis.pttl(replyKey)).toBeGreaterThan(0);
    expect(await redis.pttl(replyKey)).toBeLessThanOrEqual(30_000);
    expect(await redis.xlen(replyKey)).toBeLessThan(300);
  });

  it('works as ClientsModule.registerAsync({ customClass }) makes it, on the module of the app', async () => {
    const { app: serviceApp } = await start();
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisPatternsModule.forRoot({ connection: connection(), keyPrefix: serviceApp.get(RedisKeys).prefix }),
        ClientsModule.registerAsync([
          {
            name: 'MATH',
            useFactory: (ref: ModuleRef) => ({ customClass: RedisStreamsClient, options: { app: ref, timeout: '5s' } }),
            inject: [ModuleRef],
          },
        ]),
      ],
    }).compile();
    const app = await moduleRef.createNestApplication({ logger: false }).init();
    try {
      const client = app.get<ClientProxy>('MATH');
      expect(client).toBeInstanceOf(RedisStreamsClient);
      expect(await firstValueFrom(client.send({ cmd: 'sum' }, [20, 22]))).toBe(42);
    } finally {
      await app.close();
    }
  });

  it('rejects options it cannot use, naming them', () => {
    const app = { get: () => undefined } as never;
    expect(() => new RedisStreamsServer({ app, service: '' })).toThrow(InvalidOptionError);
    expect(() => new RedisStreamsServer({ app, service: 's', mode: 'fanout' as never })).toThrow(/"mode"/);
    expect(() => new RedisStreamsServer({ app, service: 's', concurrency: 0 })).toThrow(/"concurrency"/);
    expect(() => new RedisStreamsServer({ app, service: 's', retryBackoff: { min: '1s', max: '10ms' } })).toThrow(/"retryBackoff.max"/);
    expect(() => new RedisStreamsClient({ app, timeout: '0s' })).toThrow(/"timeout"/);
    expect(() => new RedisStreamsClient({ app, trim: { maxLen: -1 } })).toThrow(/"trim.maxLen"/);
  });
});
