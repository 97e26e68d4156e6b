import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockService, REDIS_CLIENT } from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';
import { FairQueue, QUICK_FAIR, waitAndRecord } from './fair-queue.js';

const WAITERS = 50;
const range = (count: number) => Array.from({ length: count }, (_, i) => i);

describe.each(topologies)('fair locks over instances in two processes on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  let worker: WorkerProcess;
  beforeAll(async () => {
    [apps, worker] = await Promise.all([
      Promise.all([1, 2].map(() => startContext({ connection: connection(), keyPrefix, lock: QUICK_FAIR }))),
      WorkerProcess.start('lock-fair-worker', { connection: connection(), keyPrefix }),
    ]);
  });
  afterAll(async () => {
    worker?.endInput();
    await worker?.exited;
    await Promise.all((apps ?? []).map((app) => app.close()));
  });

  it(`serves ${WAITERS} waiters, alternately of this process and of the child process, in the order they queued`, async () => {
    const [app, holderApp] = apps;
    const redis = app.get<Redis>(REDIS_CLIENT);
    const line = new FairQueue(app, 'ticket-desk');
    const granted = `${keyPrefix}granted`;
    const holder = await holderApp.get(LockService).acquire('ticket-desk', { fair: true, ttl: '60s' });

    // Each waiter is in line before the next one asks: the order they registered is 0, 1, 2...
    const waits: Promise<number>[] = [];
    for (const i of range(WAITERS)) {
      waits.push(
        i % 2 === 0
          ? worker.request<number>({ op: 'wait', key: 'ticket-desk', label: String(i), list: granted })
          : waitAndRecord(app, 'ticket-desk', String(i), granted),
      );
      await line.untilWaiting(i + 1);
    }
    // Redis recorded them so: arrival numbers 1 to 50, the two instances taking turns.
    const registered = await redis.zrange(line.queue, '0', '-1', 'WITHSCORES');
    const ids = registered.filter((_, i) => i % 2 === 0);
    expect(registered.filter((_, i) => i % 2 === 1).map(Number)).toEqual(range(WAITERS).map((i) => i + 1));
    const instances = ids.map((id) => id.split('.')[0]);
    expect(new Set(instances).size).toBe(2);
    expect(instances.every((instance, i) => instance === instances[i % 2])).toBe(true);

    await holder.release();
    const tokens = await Promise.all(waits);

    // Granted in the order they registered, each with the next fencing token.
    const grants = (await redis.lrange(granted, 0, -1)).map((entry) => entry.split(':').map(Number));
    expect(grants.map(([label]) => label)).toEqual(range(WAITERS));
    expect(grants.map(([, token]) => token)).toEqual(range(WAITERS).map((i) => holder.fencingToken + 1 + i));
    expect(tokens).toEqual(grants.map(([, token]) => token));
    expect(await redis.exists(line.queue, line.heartbeats, line.lock)).toBe(0);
  });

  it("skips a waiter killed with -9 once its heartbeat lease has ended (by Redis's clock), and serves the one behind it", async () => {
    const [app, holderApp] = apps;
    const line = new FairQueue(app, 'crash-desk');
    const doomed = await WorkerProcess.start('lock-fair-worker', { connection: connection(), keyPrefix });
    const holder = await holderApp.get(LockService).acquire('crash-desk', { fair: true, ttl: '60s' });
    // Never answered: the worker is killed while it waits.
    void doomed.request({ op: 'wait', key: 'crash-desk', label: 'doomed', list: `${keyPrefix}unused` }).catch(() => undefined);
    await line.untilWaiting(1);
    const next = app.get(LockService).acquire('crash-desk', { fair: true, wait: '30s' });
    await line.untilWaiting(2);
    const [crashed] = await line.waiters();

    doomed.kill('SIGKILL');
    await doomed.exited;
    // Its last renewal is in Redis now: its place ends then.
    const leaseEnd = await line.leaseEnd(crashed);
    await holder.release();
    const lock = await next;
    expect(await line.now()).toBeGreaterThanOrEqual(leaseEnd);
    expect(lock.fencingToken).toBe(holder.fencingToken + 1);
    expect(await line.waiters()).toEqual([]);
    await lock.release();
  }, 40_000);
});
