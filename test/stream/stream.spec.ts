import { Injectable, Logger, Scope, type INestApplicationContext } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  InvalidOptionError,
  OnStreamMessage,
  RedisConnections,
  RedisKeys,
  RedisUnavailableError,
  StreamService,
  type StreamMessageInfo,
} from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';

describe.each(topologies)('StreamService on $topology', ({ topology, connection }) => {
  let app: INestApplicationContext;
  let streams: StreamService;
  let keys: RedisKeys;
  beforeAll(async () => {
    app = await startContext({ connection: connection() });
    streams = app.get(StreamService);
    keys = app.get(RedisKeys);
  });
  afterAll(() => app.close());
  afterEach(() => vi.restoreAllMocks());

  const redis = () => app.get(RedisConnections).get();
  const pendingCount = async (stream: string, group: string) =>
    Number(((await redis().xpending(keys.tagged(['stream', stream]), group)) as [number])[0]);

  it('delivers each added event to one member of the group and acknowledges it after the handler', async () => {
    const handled: [unknown, StreamMessageInfo][] = [];
    const consumer = await streams.consume('orders', 'billing', (event, info) => void handled.push([event, info]), { block: '100ms' });
    const id = await streams.add('orders', { id: 1, at: new Date(5), tags: new Set(['a']) });
    await expect.poll(() => handled.length).toBe(1);
    expect(handled[0]).toEqual([
      { id: 1, at: new Date(5), tags: new Set(['a']) },
      { id, stream: 'orders', group: 'billing', deliveries: 1 },
    ]);
    await expect.poll(() => pendingCount('orders', 'billing')).toBe(0);
    await consumer.stop();
  });

  it('a consumer started while Redis is up waits for its connection and logs nothing', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const handled: unknown[] = [];
    const consumers = await Promise.all(
      ['quiet-a', 'quiet-b'].map((stream) => streams.consume(stream, 'g', (event) => void handled.push(event), { block: '100ms' })),
    );
    await streams.add('quiet-a', 1);
    await streams.add('quiet-b', 2);
    await expect.poll(() => handled.length).toBe(2);
    await Promise.all(consumers.map((consumer) => consumer.stop()));
    expect([...warn.mock.calls, ...error.mock.calls]).toEqual([]);
  });

  it('throws an error of Redis that is not an outage as it is: a stream key holding another type', async () => {
    const key = keys.tagged(['stream', 'not-a-stream']);
    await redis().set(key, 'a string');
    const added = await streams.add('not-a-stream', 1).catch((caught: unknown) => caught);
    expect(added).not.toBeInstanceOf(RedisUnavailableError);
    expect((added as Error).message).toMatch(/^WRONGTYPE/);
    await expect(streams.consume('not-a-stream', 'g', () => undefined)).rejects.toThrow(/^WRONGTYPE/);
    expect(await redis().get(key)).toBe('a string');
  });

  it('refuses stream, group and consumer names that are empty or not well-formed Unicode, naming them', async () => {
    const lone = 'orders\uD800';
    await expect(streams.add(lone, 1)).rejects.toMatchObject({ option: 'stream' });
    await expect(streams.add('', 1)).rejects.toThrow(InvalidOptionError);
    await expect(streams.consume(lone, 'g', () => undefined)).rejects.toMatchObject({ option: 'stream' });
    await expect(streams.consume('orders', lone, () => undefined)).rejects.toMatchObject({ option: 'group' });
    await expect(streams.consume('orders', 'g', () => undefined, { consumer: lone })).rejects.toMatchObject({ option: 'consumer' });
    await expect(streams.deadLetters(lone)).rejects.toThrow(/^Invalid option "stream": expected well-formed Unicode text/);
  });

  it('trims to about maxLen', async () => {
    for (let i = 0; i < 300; i++) await streams.add('trimmed', i, { maxLen: 100 });
    const length = await redis().xlen(keys.tagged(['stream', 'trimmed']));
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(300);
  });

  it('redelivers an event whose handler failed, after claimIdle, and acknowledges it once it succeeds', async () => {
    const deliveries: number[] = [];
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const consumer = await streams.consume(
      'retries',
      'g',
      (_event, info) => {
        deliveries.push(info.deliveries);
        if (info.deliveries < 3) throw new Error('not yet');
      },
      { block: '50ms', claimIdle: '100ms' },
    );
    await streams.add('retries', 'x');
    await expect.poll(() => deliveries, { timeout: 10_000 }).toEqual([1, 2, 3]);
    await expect.poll(() => pendingCount('retries', 'g')).toBe(0);
    await consumer.stop();
  });

  it('moves an event that keeps failing to the dead-letter stream after maxDeliveries, and goes on with the rest', async () => {
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const good: number[] = [];
    const consumer = await streams.consume<{ n: number; poison?: boolean }>(
      'poison',
      'workers',
      (event) => {
        if (event.poison) throw new Error('cannot process');
        good.push(event.n);
      },
      { block: '50ms', claimIdle: '100ms', maxDeliveries: 3 },
    );
    const poisonId = await streams.add('poison', { n: 1, poison: true });
    await streams.add('poison', { n: 2 });
    await expect.poll(async () => (await streams.deadLetters('poison')).length, { timeout: 10_000 }).toBe(1);
    const [dead] = await streams.deadLetters<{ n: number }>('poison');
    expect(dead).toMatchObject({
      originalId: poisonId,
      group: 'workers',
      deliveries: 3,
      reason: 'max-deliveries',
      event: { n: 1, poison: true },
    });
    expect(good).toEqual([2]);
    expect(await pendingCount('poison', 'workers')).toBe(0);
    expect(warn.mock.calls.map(([m]) => String(m))).toContain(
      `Entry ${poisonId} of stream "poison" failed 3 deliveries; moved to the dead-letter stream`,
    );
    await consumer.stop();
  });

  it('moves an entry it cannot decode to the dead-letter stream at once, without logging its content', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const handled: unknown[] = [];
    const consumer = await streams.consume('malformed', 'g', (event) => void handled.push(event), { block: '50ms' });
    const key = keys.tagged(['stream', 'malformed']);
    const badId = (await redis().xadd(key, '*', 'd', '{"card": 4111')) as string;
    const noPayloadId = (await redis().xadd(key, '*', 'other', 'x')) as string;
    await streams.add('malformed', 'fine');
    await expect.poll(() => handled).toEqual(['fine']);
    const dead = await streams.deadLetters('malformed');
    expect(dead.map(({ originalId, reason, event, deliveries }) => ({ originalId, reason, event, deliveries }))).toEqual([
      { originalId: badId, reason: 'malformed', event: undefined, deliveries: 1 },
      { originalId: noPayloadId, reason: 'malformed', event: undefined, deliveries: 1 },
    ]);
    expect(warn.mock.calls.map(([m]) => String(m)).join('\n')).not.toContain('4111');
    await consumer.stop();
  });

  it('at stop, lets the handler in flight finish and acknowledge, and leaves the group when idle', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    let finished = false;
    const consumer = await streams.consume(
      'slow',
      'g',
      async () => {
        started = true;
        await gate;
        finished = true;
      },
      { block: '50ms', consumer: 'slowpoke' },
    );
    await streams.add('slow', 1);
    await expect.poll(() => started).toBe(true);
    expect(await pendingCount('slow', 'g')).toBe(1);
    const stopped = consumer.stop();
    setTimeout(release, 100);
    await stopped;
    expect(finished).toBe(true);
    expect(await pendingCount('slow', 'g')).toBe(0);
    const consumers = (await redis().xinfo('CONSUMERS', keys.tagged(['stream', 'slow']), 'g')) as unknown[];
    expect(consumers).toEqual([]);
  });

  it('retries a failed event in the same consumer after the backoff, counting deliveries, and dead-letters it with its last error', async () => {
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const deliveries: number[] = [];
    const consumer = await streams.consume<{ n: number }>(
      'backoff',
      'g',
      (_event, info) => {
        deliveries.push(info.deliveries);
        throw new Error(`attempt ${info.deliveries} failed`);
      },
      // claimIdle far away: only the backoff can bring the retries.
      { block: '50ms', claimIdle: '1m', maxDeliveries: 3, retryBackoff: { min: '10ms', max: '50ms' } },
    );
    const id = await streams.add('backoff', { n: 1 });
    await expect.poll(async () => (await streams.deadLetters('backoff')).length).toBe(1);
    expect(deliveries).toEqual([1, 2, 3]);
    expect((await streams.deadLetters('backoff'))[0]).toMatchObject({ originalId: id, deliveries: 3, error: 'attempt 3 failed' });
    expect(await streams.groupBacklog('backoff', 'g')).toEqual({ pending: 0, oldestPendingMs: 0, deadLetters: 1 });
    await consumer.stop();
  });

  it('retries every failed event after a backoff of a millisecond or two: none waits for claimIdle', async () => {
    vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const deliveries = new Map<number, number[]>();
    const consumer = await streams.consume<{ n: number }>(
      'short-backoff',
      'g',
      (event, info) => {
        deliveries.set(event.n, [...(deliveries.get(event.n) ?? []), info.deliveries]);
        if (info.deliveries === 1) throw new Error('first delivery fails');
      },
      // Redis counts an entry's idle time in whole milliseconds: a retry must not depend on it.
      { block: '50ms', claimIdle: '1m', maxDeliveries: 3, retryBackoff: { min: '2ms', max: '2ms' } },
    );
    for (let n = 0; n < 200; n++) await streams.add('short-backoff', { n });
    await expect.poll(() => [...deliveries.values()].filter((seen) => seen.length === 2).length, { timeout: 20_000 }).toBe(200);
    expect([...deliveries.values()].every((seen) => seen[0] === 1 && seen[1] === 2)).toBe(true);
    expect(await streams.groupBacklog('short-backoff', 'g')).toEqual({ pending: 0, oldestPendingMs: 0, deadLetters: 0 });
    await consumer.stop();
  });

  it('trims by age (MINID), lets a stream expire after its last add, reads without a group, reports and deletes a group', async () => {
    const key = keys.tagged(['stream', 'aged']);
    // Approximate (~) trimming drops whole nodes of the stream (100 entries each by default): 300 old entries fill some.
    const old = redis().pipeline();
    for (let n = 0; n < 300; n++) old.xadd(key, `${Date.now() - 3_600_000}-${n + 1}`, 'd', '"old"');
    await old.exec();
    await streams.add('aged', 'new', { maxAge: '1m' });
    const left = await redis().xrange(key, '-', '+');
    expect(left.length).toBeLessThan(301);
    expect(left.at(-1)?.[1]).toEqual(['d', '"new"']);
    await redis().xtrim(key, 'MINID', Date.now() - 60_000);
    await expect(streams.add('aged', 'x', { maxAge: '1m', maxLen: 5 })).rejects.toThrow(InvalidOptionError);

    const shortLived = await streams.add('short-lived', 1, { expire: '30s' });
    expect(await redis().pttl(keys.tagged(['stream', 'short-lived']))).toBeGreaterThan(25_000);
    expect(await redis().xrange(keys.tagged(['stream', 'short-lived']), '-', '+')).toEqual([[shortLived, ['d', '1']]]);

    const read: [unknown, string][] = [];
    const tail = streams.tail('aged', (event, id) => void read.push([event, id]), { block: '50ms' });
    const id = await streams.add('aged', 'later');
    await expect.poll(() => read.map(([event]) => event)).toEqual(['new', 'later']);
    expect(read[1][1]).toBe(id);
    await tail.stop();

    const consumer = await streams.consume('aged', 'held', () => new Promise(() => undefined), { block: '50ms', batch: 1 });
    await expect.poll(async () => (await streams.groupBacklog('aged', 'held')).pending).toBe(1);
    expect((await streams.groupBacklog('aged', 'held')).oldestPendingMs).toBeGreaterThanOrEqual(0);
    expect(await streams.destroyGroup('aged', 'held')).toBe(true);
    expect(await streams.destroyGroup('aged', 'held')).toBe(false);
    void consumer.stop();
  });

  it('with from: "new", a new group skips what the stream already holds', async () => {
    await streams.add('history', 'old');
    const handled: unknown[] = [];
    const consumer = await streams.consume('history', 'late', (event) => void handled.push(event), { block: '50ms', from: 'new' });
    await streams.add('history', 'new');
    await expect.poll(() => handled).toEqual(['new']);
    await consumer.stop();
  });

  describe('with consumers in separate processes', () => {
    const workerConfig = (name: string, mode: 'record' | 'hang', stream: string) => ({
      connection: connection(),
      keyPrefix: keys.prefix,
      stream,
      group: 'pool',
      name,
      mode,
      claimIdle: '20s',
      batch: 5,
    });

    it('two workers share the events: every event handled exactly once, none left pending', async () => {
      const stream = `shared-${topology}`;
      const workers = await Promise.all([
        WorkerProcess.start('stream-worker', workerConfig('w1', 'record', stream)),
        WorkerProcess.start('stream-worker', workerConfig('w2', 'record', stream)),
      ]);
      try {
        for (let n = 0; n < 200; n++) await streams.add(stream, { n });
        const handledBy = async () =>
          Object.values(await redis().hgetall(keys.key('handled-by'))).reduce((sum, count) => sum + Number(count), 0);
        await expect.poll(handledBy, { timeout: 20_000 }).toBe(200);
        await expect.poll(() => pendingCount(stream, 'pool')).toBe(0);
        const counts = await redis().hgetall(keys.key('handled'));
        expect(Object.keys(counts)).toHaveLength(200);
        expect(Object.values(counts).every((count) => count === '1')).toBe(true);
        const byWorker = await redis().hgetall(keys.key('handled-by'));
        expect(Number(byWorker.w1)).toBeGreaterThan(0);
        expect(Number(byWorker.w2)).toBeGreaterThan(0);
        for (const worker of workers) worker.kill('SIGTERM');
        expect(await Promise.all(workers.map((worker) => worker.exited))).toEqual([0, 0]);
      } finally {
        for (const worker of workers) worker.kill('SIGKILL');
        await Promise.all([redis().del(keys.key('handled')), redis().del(keys.key('handled-by'))]);
      }
    }, 60_000);

    it('events held by a killed worker are claimed and handled by another member', async () => {
      const stream = `claimed-${topology}`;
      const ids: string[] = [];
      for (let n = 0; n < 5; n++) ids.push(await streams.add(stream, { n }));
      const doomed = await WorkerProcess.start('stream-worker', workerConfig('doomed', 'hang', stream));
      try {
        // It fetches all five in one batch, and hangs in the handler of the first.
        await expect.poll(() => redis().llen(keys.key('received', 'doomed')), { timeout: 10_000 }).toBe(1);
        expect(await pendingCount(stream, 'pool')).toBe(5);
      } finally {
        doomed.kill('SIGKILL');
        await doomed.exited;
      }

      const handled: StreamMessageInfo[] = [];
      const survivor = await streams.consume(stream, 'pool', (_event, info) => void handled.push(info), {
        block: '50ms',
        claimIdle: '300ms',
      });
      await expect.poll(() => handled.length, { timeout: 10_000 }).toBe(5);
      expect(handled.map((info) => info.id).sort()).toEqual([...ids].sort());
      expect(handled.every((info) => info.deliveries === 2)).toBe(true);
      expect(await pendingCount(stream, 'pool')).toBe(0);
      await survivor.stop();
    }, 60_000);
  });
});

describe('@OnStreamMessage', () => {
  const handled: unknown[] = [];

  @Injectable()
  class Billing {
    @OnStreamMessage('invoices', 'billing', { block: '50ms' })
    bill(event: unknown, info: StreamMessageInfo) {
      handled.push([event, info.group]);
    }
  }

  @Injectable({ scope: Scope.TRANSIENT })
  class Transient {
    @OnStreamMessage('invoices', 'transient')
    never(event: unknown) {
      handled.push(['transient', event]);
    }
  }

  it('consumes from startup, skips transient providers, and leaves the group at shutdown', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: topologies[0].connection() }, { providers: [Billing, Transient] });
    const redis = app.get(RedisConnections).get();
    const streamKey = app.get(RedisKeys).tagged(['stream', 'invoices']);
    await app.get(StreamService).add('invoices', { total: 10 });
    await expect.poll(() => handled).toEqual([[{ total: 10 }, 'billing']]);
    expect(await redis.xinfo('GROUPS', streamKey)).toHaveLength(1);
    expect(warn.mock.calls.map(([m]) => String(m))).toContain(
      '@OnStreamMessage on Transient.never is ignored: its class is request-scoped or transient, so there is no single instance to call.',
    );
    const before = await startContext({ connection: topologies[0].connection(), keyPrefix: app.get(RedisKeys).prefix });
    await app.close();
    expect(await before.get(RedisConnections).get().xinfo('CONSUMERS', streamKey, 'billing')).toEqual([]);
    await before.close();
    vi.restoreAllMocks();
  });
});
