import { afterEach, describe, expect, it } from 'vitest';
import { LockService, RedisConnections, type RedisClient } from '../../lib/index.js';
import { appInstances } from '../support/app-instances.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';
import { holdRecorded, ReadLoad, type RecordedHold } from '../support/workers/read-write-tasks.js';
import { assertExclusive, heldTogether, parseEvents } from './read-write-events.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(topologies)('a read-write lock shared by app instances in separate processes on $topology', ({ topology, connection }) => {
  const keyPrefix = uniquePrefix();
  const running = appInstances('read-write-lock-worker', connection, keyPrefix);
  /** Workers of a test of their own (killed with -9 there); ended after it in any case. */
  const own: WorkerProcess[] = [];
  afterEach(async () => {
    for (const worker of own.splice(0)) {
      worker.kill('SIGKILL');
      await worker.exited;
    }
  });
  const redis = (): RedisClient => running.apps[0].get(RedisConnections).get();
  const locks = (i = 0) => running.apps[i].get(LockService);
  const startWorker = async () => {
    const worker = await WorkerProcess.start('read-write-lock-worker', { connection: connection(), keyPrefix });
    own.push(worker);
    return worker;
  };
  const killed = async (worker: WorkerProcess) => {
    worker.kill('SIGKILL');
    await worker.exited;
  };

  it('lets readers of three instances overlap, never a reader beside a writer, with fencing tokens ordered across both', async () => {
    const key = `mixed-${topology}`;
    const events = `${keyPrefix}events:mixed`;
    const holds = (offset: number): RecordedHold[] =>
      Array.from({ length: 20 }, (_, i) => ({ key, side: (i + offset) % 5 === 0 ? 'write' : 'read', holdMs: 15, events }));
    const staggered = (instance: number) =>
      Promise.all(
        holds(instance).map(async (hold, i) => {
          await sleep(i * 5);
          return holdRecorded(locks(instance), redis(), hold);
        }),
      );
    const tokens = await Promise.all([
      running.worker.request<number[]>({ op: 'holds', holds: holds(2), staggerMs: 5 }),
      staggered(0),
      staggered(1),
    ]);
    expect(new Set(tokens.flat()).size).toBe(60);
    const recorded = parseEvents(await redis().lrange(events, 0, -1));
    expect(recorded).toHaveLength(120);
    assertExclusive(recorded);
    expect(heldTogether(recorded).most).toBeGreaterThan(1);
  });

  it('gets a writer in under a continuous read load from two processes, overtaken by no read once it has begun waiting', async () => {
    const key = `load-${topology}`;
    const granted = `${keyPrefix}granted:load`;
    const LOOPS = 6;
    // The writer's script loaded on the key's server first: a first attempt refused with NOSCRIPT
    // would reach Redis (as EVAL) after the fence is read below.
    await (await locks(0).readWrite(key).write.acquire()).release();
    await running.worker.request({ op: 'read-load', key, loops: LOOPS / 2, holdMs: 10, granted });
    const load = new ReadLoad(locks(1), redis(), { key, loops: LOOPS / 2, holdMs: 10, granted });
    await expect.poll(() => redis().llen(granted), { interval: 10 }).toBeGreaterThan(50);
    const writing = locks(0).readWrite(key).write.acquire({ wait: '30s', ttl: '5s' });
    // Sent on the same connection right after the writer's first attempt, so Redis runs it after
    // that attempt: every read granted before the writer began waiting has a token up to this.
    const before = Number(await redis().get(`${keyPrefix}rwlock:f:{${key}}`));
    const writer = await writing;
    await sleep(50);
    const whileWriting = (await redis().lrange(granted, 0, -1)).map(Number);
    await writer.release();
    const readsAfter = whileWriting.length;
    await expect.poll(() => redis().llen(granted), { interval: 10 }).toBeGreaterThan(readsAfter + 20);
    const reads = (await load.stop()) + (await running.worker.request<number>({ op: 'stop-load' }));
    const overtook = whileWriting.filter((token) => token > before && token < writer.fencingToken);
    // From its first attempt on (refused, it recorded its intent), no read got in before it.
    expect(overtook).toEqual([]);
    expect(whileWriting.filter((token) => token > writer.fencingToken)).toEqual([]);
    expect(reads).toBeGreaterThan(readsAfter);
    console.log(`[read-write ${topology}] the writer waited behind ${LOOPS} reader loops in two processes; ${reads} reads in all`);
  });

  for (const [held, waiting] of [
    ['read', 'write'],
    ['write', 'read'],
  ] as const) {
    it(`gives back the ${held} lease of a holder killed with -9 once it ends, not before`, async () => {
      const key = `killed-${held}-${topology}`;
      const holder = await startWorker();
      const token = await holder.request<number>({ op: 'hold', key, side: held, ttl: '3s', wait: '0ms' });
      expect(await locks().readWrite(key)[waiting].tryAcquire()).toBeNull();
      await killed(holder);
      // Its lease is still running (renewed every second until the kill): nobody gets in yet.
      expect(await locks().readWrite(key)[waiting].tryAcquire()).toBeNull();
      const next = await locks().readWrite(key)[waiting].acquire({ wait: '10s' });
      expect(next.fencingToken).toBeGreaterThan(token);
      await next.release();
    });
  }

  it('lets readers in again once the intent of a waiting writer killed with -9 has ended', async () => {
    const key = `killed-waiter-${topology}`;
    const intents = `${keyPrefix}rwlock:i:{${key}}`;
    const reader = await locks().readWrite(key).read.acquire({ ttl: '10s' });
    const waiter = await startWorker();
    void waiter.request({ op: 'hold', key, side: 'write', ttl: '3s', wait: '60s' }).catch(() => undefined);
    await expect.poll(() => redis().zcard(intents), { interval: 10, timeout: 10_000 }).toBe(1);
    await killed(waiter);
    await reader.release();
    // The abandoned intent still holds readers back...
    expect(await locks(1).readWrite(key).read.tryAcquire()).toBeNull();
    // ...until it ends by itself (within 3 retry pauses of the writer's last attempt).
    const next = await locks(1).readWrite(key).read.acquire({ wait: '10s' });
    expect(await redis().exists(intents)).toBe(0);
    await next.release();
  });
});
