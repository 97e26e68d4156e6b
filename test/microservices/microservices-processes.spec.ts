import { lastValueFrom, firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys, StreamService } from '../../lib/index.js';
import { scanKeys } from '../support/scan.js';
import { SLOW_BULK_OPERATIONS, topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';
import { startServiceApp, type ServiceApp } from './microservices-app.js';

const EVENTS = 2_000;
const CONCURRENCY = 4;

describe.each(topologies)('microservice instances in separate processes, on $topology', ({ topology, connection }) => {
  let producer: ServiceApp;
  const workers: WorkerProcess[] = [];
  beforeAll(async () => {
    producer = await startServiceApp(connection(), { listen: false, keyPrefix: uniquePrefix(), client: { timeout: '20s' } });
  });
  afterAll(async () => {
    for (const worker of workers.splice(0)) worker.kill('SIGKILL');
    await producer.close();
  });
  const redis = () => producer.app.get(RedisConnections).get();

  /** A fresh key prefix: a service of its own, on streams of its own. */
  const service = () => {
    const keyPrefix = uniquePrefix();
    const keys = new RedisKeys(keyPrefix);
    const start = async (name: string, extra: Record<string, unknown> = {}) => {
      const worker = await WorkerProcess.start('microservice-worker', {
        connection: connection(),
        keyPrefix,
        role: 'server',
        name,
        concurrency: CONCURRENCY,
        // Far above a handler's time even on a loaded machine: nothing is claimed from a live instance.
        claimIdle: '5s',
        workMs: 1,
        replyExpire: '1s',
        ...extra,
      });
      workers.push(worker);
      return worker;
    };
    return { keyPrefix, keys, start, testKey: (...parts: string[]) => keys.tagged('mt', ...parts) };
  };

  /**
   * A client on the service's prefix, in this process. Its tests emit a thousand events or more at
   * once: on a loaded 2-CPU machine their replies may take longer than the default 1s commandTimeout.
   */
  const clientOf = async (keyPrefix: string) => {
    const app = await startServiceApp(connection(), {
      listen: false,
      keyPrefix,
      client: { timeout: '20s' },
      moduleOptions: { ...SLOW_BULK_OPERATIONS },
    });
    return app;
  };

  it(`${EVENTS} events, half emitted while no instance runs, over 3 instances: each handled exactly once`, async () => {
    const { keyPrefix, start, testKey } = service();
    const emitter = await clientOf(keyPrefix);
    try {
      const emit = (from: number, to: number) =>
        Promise.all(Array.from({ length: to - from }, (_, k) => lastValueFrom(emitter.client.emit('job', { n: from + k }))));
      await emit(0, EVENTS / 2);
      const instances = await Promise.all([start('a'), start('b'), start('c')]);
      await emit(EVENTS / 2, EVENTS);
      const handled = async () => Object.keys(await redis().hgetall(testKey('handled'))).length;
      await expect.poll(handled, { timeout: 30_000, interval: 100 }).toBe(EVENTS);
      const counts = Object.values(await redis().hgetall(testKey('handled')));
      expect(counts.filter((times) => times !== '1')).toEqual([]);
      const byInstance = await redis().hgetall(testKey('handled-by'));
      expect(Object.keys(byInstance).sort()).toEqual(['a', 'b', 'c']);
      expect(Object.values(byInstance).reduce((sum, count) => sum + Number(count), 0)).toBe(EVENTS);
      const streams = emitter.app.get(StreamService);
      await expect.poll(async () => (await streams.groupBacklog('ms:job', 'jobs')).pending).toBe(0);
      console.log(
        `[microservices ${topology}] ${EVENTS} events (${EVENTS / 2} sent before any instance ran), handled by a/b/c ${byInstance.a}/${byInstance.b}/${byInstance.c}, 0 twice, 0 lost`,
      );
      for (const instance of instances) instance.kill('SIGTERM');
      expect(await Promise.all(instances.map((instance) => instance.exited))).toEqual([0, 0, 0]);
    } finally {
      await emitter.close();
    }
  });

  it('one instance killed with SIGKILL mid-handler: every event handled, none lost, duplicates only of what it had in flight', async () => {
    const { keyPrefix, start, testKey } = service();
    const emitter = await clientOf(keyPrefix);
    try {
      const instances = await Promise.all([
        start('doomed', { hangAfter: 100, claimIdle: '3s' }),
        start('w1', { claimIdle: '3s' }),
        start('w2', { claimIdle: '3s' }),
      ]);
      const [doomed, ...survivors] = instances;
      await Promise.all(Array.from({ length: 1_500 }, (_, n) => lastValueFrom(emitter.client.emit('job', { n }))));
      // The doomed instance finishes 100 events, then does the work of CONCURRENCY more (counted) and hangs in them, unacknowledged.
      await expect.poll(() => redis().scard(testKey('inflight')), { timeout: 30_000 }).toBe(CONCURRENCY);
      doomed.kill('SIGKILL');
      await doomed.exited;
      const inflight = await redis().smembers(testKey('inflight'));
      const handled = async () => Object.keys(await redis().hgetall(testKey('handled'))).length;
      await expect.poll(handled, { timeout: 30_000, interval: 100 }).toBe(1_500);
      const streams = emitter.app.get(StreamService);
      await expect.poll(async () => (await streams.groupBacklog('ms:job', 'jobs')).pending, { timeout: 20_000 }).toBe(0);
      const counts = await redis().hgetall(testKey('handled'));
      const twice = Object.entries(counts)
        .filter(([, times]) => times !== '1')
        .map(([n]) => n);
      // At least once: only what the killed instance had in flight ran again, once more.
      expect(twice.sort()).toEqual(inflight.sort());
      expect(twice.length).toBeLessThanOrEqual(CONCURRENCY);
      expect(Object.values(counts).every((times) => times === '1' || times === '2')).toBe(true);
      const byInstance = await redis().hgetall(testKey('handled-by'));
      expect(Number(byInstance.doomed)).toBe(100);
      console.log(
        `[microservices ${topology}] 1500 events, 1 instance killed with ${inflight.length} in flight: ${twice.length} handled twice, 0 lost (w1/w2/doomed ${byInstance.w1}/${byInstance.w2}/${byInstance.doomed})`,
      );
      for (const survivor of survivors) survivor.kill('SIGTERM');
      expect(await Promise.all(survivors.map((survivor) => survivor.exited))).toEqual([0, 0]);
    } finally {
      await emitter.close();
    }
  });

  it('1,000 concurrent requests across 2 instances all answered with the right correlation; a killed requester leaves nothing growing', async () => {
    const { keyPrefix, keys, start } = service();
    const requester = await clientOf(keyPrefix);
    try {
      const [doomed, ...instances] = await Promise.all([
        WorkerProcess.start('microservice-worker', { connection: connection(), keyPrefix, role: 'requester', name: 'r' }),
        start('x'),
        start('y'),
      ]);
      workers.push(doomed);
      const replies = await Promise.all(
        Array.from({ length: 1_000 }, (_, n) => firstValueFrom(requester.client.send<{ n: number; by: string }>('whoami', { n }))),
      );
      expect(replies.map((reply) => reply.n)).toEqual(Array.from({ length: 1_000 }, (_, n) => n));
      const byInstance = { x: replies.filter((reply) => reply.by === 'x').length, y: replies.filter((reply) => reply.by === 'y').length };
      expect(byInstance.x + byInstance.y).toBe(1_000);
      expect(byInstance.x).toBeGreaterThan(0);
      expect(byInstance.y).toBeGreaterThan(0);

      const requestStream = keys.tagged(['stream', 'ms:slow']);
      await doomed.request({ cmd: 'send', count: 50 });
      await expect.poll(() => redis().xlen(requestStream), { timeout: 10_000 }).toBe(50);
      doomed.kill('SIGKILL');
      await doomed.exited;
      // Its requests are answered, into a reply stream that expires (replyExpire 1s) once nobody reads it.
      const streams = requester.app.get(StreamService);
      await expect.poll(async () => (await streams.groupBacklog('ms:slow', 'jobs')).pending, { timeout: 20_000 }).toBe(0);
      const replyKeys = async () => (await scanKeys(requester.app.get(RedisConnections).get(), `${keyPrefix}{stream:ms-reply*`)).length;
      // Only the live requester's own reply stream is left, and it expires too.
      await expect.poll(replyKeys, { timeout: 10_000, interval: 200 }).toBe(0);
      console.log(
        `[microservices ${topology}] 1000 concurrent requests answered by x/y ${byInstance.x}/${byInstance.y}; killed requester's reply stream expired`,
      );
      for (const instance of instances) instance.kill('SIGTERM');
      expect(await Promise.all(instances.map((instance) => instance.exited))).toEqual([0, 0]);
    } finally {
      await requester.close();
    }
  });
});
