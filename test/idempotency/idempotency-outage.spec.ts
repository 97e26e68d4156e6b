import { randomUUID } from 'node:crypto';
import { Logger, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import calculateSlot from 'cluster-key-slot';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { IdempotencyService, RedisConnections, RedisKeys, RedisUnavailableError } from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { command, RedisTestCluster } from '../support/redis-server.js';
import { QUICK_OUTAGES, uniquePrefix } from '../support/testing-app.js';
import { platforms, runs, send, startHttpApp } from './idempotency-app.js';

describe.each(platforms)('idempotency keys when Redis goes away ($platform)', ({ adapter }) => {
  const own = ownRedisServer();
  let running: { app: INestApplication; url: string };
  beforeAll(async () => {
    running = await startHttpApp(adapter(), { connection: own.server.address, keyPrefix: uniquePrefix(), ...QUICK_OUTAGES });
  });
  afterAll(() => running?.app.close());
  afterEach(() => vi.restoreAllMocks());

  const url = (path = '') => `${running.url}/payments${path}`;
  const runsOf = (handler: string) => runs.get(handler) ?? 0;

  it('fails closed with 503 (logged once) without running the handler, runs `open` routes unchecked, and works again once Redis is back', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const key = randomUUID();
    const created = runsOf('create');
    const opened = runsOf('open');
    await own.server.stop();

    for (let attempt = 0; attempt < 3; attempt++) {
      const refused = await send(url(), { key, body: { amount: 5 } });
      expect([refused.status, refused.json()]).toEqual([503, { statusCode: 503, message: 'Service Unavailable' }]);
    }
    expect(runsOf('create')).toBe(created);
    // Without a key nothing is asked of Redis; an 'open' route runs without idempotency.
    expect((await send(url(), { body: { amount: 5 } })).status).toBe(201);
    for (let attempt = 0; attempt < 2; attempt++) expect((await send(url('/open'), { key })).status).toBe(201);
    expect(runsOf('open') - opened).toBe(2);
    const service = running.app.get(IdempotencyService);
    await expect(service.run(key, 'f', () => 1)).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(service.run(key, 'f', () => 1)).rejects.toMatchObject({ feature: 'idempotency keys', outage: 'disconnected' });
    expect(await service.run(key, 'f', () => 'unchecked', { onStoreError: 'open' })).toEqual({ value: 'unchecked', replayed: false });
    const outages = warn.mock.calls.filter(([message]) => String(message).includes('unavailable to idempotency keys'));
    expect(outages).toHaveLength(1);
    expect(outages[0][0]).toMatch(/Redis connection "default" is unavailable to idempotency keys \(no connection to the server\)/);

    await own.server.start();
    await expect.poll(async () => (await send(url(), { key, body: { amount: 5 } })).status, { timeout: 10_000, interval: 100 }).toBe(201);
    const replay = await send(url(), { key, body: { amount: 5 } });
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(runsOf('create') - created).toBe(2);
    // Its end is logged once calls have succeeded for a second.
    const endLogged = async () => {
      await send(url(), { key, body: { amount: 5 } });
      return log.mock.calls.some(([message]) => String(message).includes('available to idempotency keys again'));
    };
    await expect.poll(endLogged, { timeout: 5_000, interval: 200 }).toBe(true);
  });

  it('answers the response of a handler that ran, not a 500, when Redis goes away before it could be stored', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const key = randomUUID();
    const pending = send(url(), { key, body: { amount: 7, delayMs: 400 } });
    const redis = running.app.get(RedisConnections).get();
    const record = running.app.get(RedisKeys).tagged(['idem', key]);
    await expect.poll(() => redis.hget(record, 'state'), { timeout: 5_000, interval: 20 }).toBe('running');
    await own.server.stop();
    const answered = await pending;
    expect([answered.status, answered.json().amount]).toEqual([201, 7]);
    await own.server.start();
  });
});

describe('idempotency keys on a Cluster where one master does not answer', () => {
  let servers: RedisTestCluster;
  let running: { app: INestApplication; url: string };
  beforeAll(async () => {
    servers = await RedisTestCluster.start({ masters: 3 });
    running = await startHttpApp(new ExpressAdapter(), {
      connection: { cluster: { nodes: servers.nodes } },
      keyPrefix: uniquePrefix(),
      commandTimeout: '200ms',
    });
  });
  afterAll(async () => {
    await running?.app.close();
    await servers?.destroy();
  });

  it('answers 503 only for keys on that master, logged once, and those keys work again once it answers', async () => {
    const slots = (await running.app.get(RedisConnections).get().call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    // A key's record is tagged {idem:<key>}: that tag's slot names the master holding it.
    const masterOf = (key: string) =>
      slots.find(([from, to]) => calculateSlot(`idem:${key}`) >= from && calculateSlot(`idem:${key}`) <= to)![2][1];
    const keys = Array.from({ length: 50 }, () => randomUUID());
    const [paused, warm] = keys.filter((key) => masterOf(key) === masterOf(keys[0]));
    const live = keys.find((key) => masterOf(key) !== masterOf(paused))!;
    const pay = (key: string) => send(`${running.url}/payments`, { key, body: { amount: 9 } });
    // The scripts are loaded on that master, so a begin held up by the pause runs once it ends.
    expect((await pay(warm)).status).toBe(201);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      expect(await command(masterOf(paused), 'CLIENT PAUSE 1500 ALL')).toBe('+OK\r\n');
      expect((await pay(paused)).status).toBe(503);
      expect((await pay(live)).status).toBe(201);
      expect(warn.mock.calls.filter(([message]) => String(message).includes('unavailable to idempotency keys'))).toHaveLength(1);
      // The begins that timed out ran once the pause ended, and were given back: the key is free
      // at once, not after its lease (30s).
      await expect.poll(async () => (await pay(paused)).status, { timeout: 10_000, interval: 100 }).toBe(201);
      expect((await pay(paused)).headers.get('idempotent-replayed')).toBe('true');
      expect((await pay(live)).headers.get('idempotent-replayed')).toBe('true');
    } finally {
      vi.restoreAllMocks();
    }
  });
});
