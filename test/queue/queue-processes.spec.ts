import { Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { QueueService, RedisConnections, RedisKeys, RedisUnavailableError, type Queue } from '../../lib/index.js';
import { freePort, HOST, RedisTestServer } from '../support/redis-server.js';
import { startContext, topologies } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';

const JOBS = 2_000;

describe.each(topologies)('work queue workers in separate processes, on $topology', ({ topology, connection }) => {
  let app: INestApplicationContext;
  let keys: RedisKeys;
  beforeAll(async () => {
    app = await startContext({ connection: connection() });
    keys = app.get(RedisKeys);
  });
  afterAll(() => app.close());
  const redis = () => app.get(RedisConnections).get();
  /** The keys the worker writes (see queue-worker.ts). */
  const testKey = (...parts: string[]) => keys.tagged('qt', ...parts);

  const workerConfig = (queue: string, name: string, hangAfter?: number) => ({
    connection: connection(),
    keyPrefix: keys.prefix,
    queue,
    name,
    concurrency: 4,
    visibilityTimeout: '2s',
    workMs: 2,
    hangAfter,
  });

  it(`${JOBS} jobs over 3 workers, one killed with SIGKILL mid-job: every job handled, none acknowledged twice, nothing left`, async () => {
    const name = `kill9-${topology}`;
    const queue = app.get(QueueService).queue<{ n: number }>(name);
    const workers = await Promise.all([
      WorkerProcess.start('queue-worker', workerConfig(name, 'doomed', 100)),
      WorkerProcess.start('queue-worker', workerConfig(name, 'w1')),
      WorkerProcess.start('queue-worker', workerConfig(name, 'w2')),
    ]);
    const [doomed, ...survivors] = workers;
    try {
      const ids = await queue.addMany(Array.from({ length: JOBS }, (_, n) => ({ n })));
      expect(new Set(ids).size).toBe(JOBS);
      // The doomed worker handles (and acknowledges) 100 jobs, then hangs in 4 (its concurrency),
      // holding their leases: it is killed in the middle of those.
      const inflight = testKey('inflight', 'doomed');
      const doomedState = async () => [await redis().scard(inflight), Number(await redis().hget(testKey('acked-by'), 'doomed'))];
      await expect.poll(doomedState, { timeout: 30_000 }).toEqual([4, 100]);
      const heldAtKill = await redis().smembers(inflight);
      doomed.kill('SIGKILL');
      await doomed.exited;

      const handled = async () => Object.keys(await redis().hgetall(testKey('handled'))).length;
      await expect.poll(handled, { timeout: 60_000, interval: 200 }).toBe(JOBS);
      await expect.poll(() => queue.counts(), { timeout: 10_000 }).toEqual({ waiting: 0, active: 0, delayed: 0, dead: 0 });

      const counts = await redis().hgetall(testKey('handled'));
      const twice = Object.entries(counts).filter(([, times]) => times !== '1');
      // At least once: only jobs the killed worker was in the middle of run again, and it never
      // finished those (it hung in them), so none ran to the end twice.
      expect(twice).toEqual([]);
      const byWorker = await redis().hgetall(testKey('handled-by'));
      expect(Number(byWorker.doomed)).toBe(100);
      expect(Number(byWorker.w1) + Number(byWorker.w2)).toBe(JOBS - 100);
      // The jobs held by the killed worker were handed out again and handled by the survivors.
      for (const n of heldAtKill) expect(counts[n]).toBe('1');

      const acked = await redis().hgetall(testKey('acked'));
      expect(Object.keys(acked).sort()).toEqual([...ids].sort());
      expect(Object.values(acked).every((times) => times === '1')).toBe(true);
      expect(await redis().hlen(queue.keys.jobs)).toBe(0);
      expect(await redis().hlen(queue.keys.leases)).toBe(0);
      console.log(
        `[queue ${topology}] ${JOBS} jobs, 1 worker killed holding ${heldAtKill.length} jobs, handled by w1/w2/doomed ${byWorker.w1}/${byWorker.w2}/${byWorker.doomed}, 0 handled twice, ${Object.keys(acked).length} acks, 0 acked twice`,
      );

      for (const worker of survivors) worker.kill('SIGTERM');
      expect(await Promise.all(survivors.map((worker) => worker.exited))).toEqual([0, 0]);
    } finally {
      for (const worker of workers) worker.kill('SIGKILL');
      await Promise.all(['handled', 'handled-by', 'acked', 'acked-by'].map((part) => redis().del(testKey(part))));
    }
  }, 120_000);
});

describe('a work queue when Redis restarts in the middle (AOF, appendfsync always)', () => {
  let server: RedisTestServer;
  beforeAll(async () => {
    server = await RedisTestServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  });
  afterAll(() => server?.destroy());
  afterEach(() => vi.restoreAllMocks());

  it('workers wait through the outage (logged once), add() rejects with 503 meanwhile, and every job is handled', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const app = await startContext({
      connection: server.address,
      connectTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const queue = app.get(QueueService).queue<{ n: number }>('restart');
    const handled = new Map<number, number>();
    const worker = queue.process(
      async ({ n }) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        handled.set(n, (handled.get(n) ?? 0) + 1);
      },
      { concurrency: 4, visibilityTimeout: '1s', block: '100ms' },
    );
    await queue.addMany(Array.from({ length: 400 }, (_, n) => ({ n })));
    await expect.poll(() => handled.size, { timeout: 10_000 }).toBeGreaterThanOrEqual(100);

    await server.kill(); // a crash: nothing but what the AOF already holds survives
    await expect(queue.add({ n: -1 })).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(queue.counts()).rejects.toMatchObject({ statusCode: 503, feature: 'queues', outage: 'disconnected' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await server.start();

    await expect.poll(() => handled.size, { timeout: 30_000 }).toBe(400);
    await expect.poll(() => queue.counts(), { timeout: 10_000 }).toEqual({ waiting: 0, active: 0, delayed: 0, dead: 0 });
    await worker.stop();
    await app.close();

    const messages = warn.mock.calls.map(([message]) => String(message));
    const outages = messages.filter((message) => message.includes('to queues'));
    expect(outages.length).toBeGreaterThanOrEqual(1);
    expect(outages.length).toBeLessThanOrEqual(2);
    expect(outages[0]).toMatch(
      /^Redis connection "default" is unavailable to queues \(.+\); add\(\) and counts\(\) fail with RedisUnavailableError \(503\) and workers pause until it is back$/,
    );
    expect(error.mock.calls).toEqual([]);
    const again = [...handled.values()].filter((times) => times > 1).length;
    console.log(`[queue restart] 400 jobs, ${again} handled twice (acknowledgements lost with the connection)`);
  }, 60_000);
});

describe.each([
  { topology: 'standalone', connection: (port: number) => ({ host: HOST, port }) },
  { topology: 'cluster', connection: (port: number) => ({ cluster: { nodes: [{ host: HOST, port }] } }) },
])('work queues with no Redis to reach, on $topology', ({ connection }) => {
  afterEach(() => vi.restoreAllMocks());

  it('add(), counts(), deadLetters() and retryDead() reject with 503; workers start and log the outage once', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const app = await startContext({
      connection: connection(await freePort()),
      connectTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const queue: Queue = app.get(QueueService).queue('orders');
    for (let i = 0; i < 3; i++) queue.process(() => undefined, { block: '100ms' });
    await expect(queue.add(1)).rejects.toMatchObject({ statusCode: 503, feature: 'queues', outage: 'disconnected' });
    await expect(queue.addMany([1, 2])).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(queue.counts()).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(queue.deadLetters()).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(queue.retryDead()).rejects.toBeInstanceOf(RedisUnavailableError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await app.close();
    const messages = warn.mock.calls.map(([message]) => String(message));
    expect(messages.filter((message) => message.includes('queues'))).toEqual([
      'Redis connection "default" is unavailable to queues (no connection to the server); add() and counts() fail with RedisUnavailableError (503) and workers pause until it is back',
    ]);
    expect(error.mock.calls).toEqual([]);
  });
});
