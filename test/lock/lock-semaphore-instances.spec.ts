import type { INestApplicationContext } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { LockService, RedisConnections } from '../../lib/index.js';
import { appInstances } from '../support/app-instances.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';
import { runTasks, type PermitRun, type TasksCommand } from '../support/workers/semaphore-tasks.js';

const PERMITS = 3;
const TASKS_PER_INSTANCE = 100;
/**
 * 300 waiters polling on a loaded machine can keep a script waiting past the default 1 s, and a
 * timed-out acquisition fails the task ('store-unavailable'): this suite is about exclusion and
 * leases, so its instances (the worker too) wait longer. Outages have their own suite.
 */
const COMMAND_TIMEOUT = '10s';

describe.each(topologies)('a semaphore of 3 shared by three app instances (one in a child process) on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  const running = appInstances('semaphore-worker', connection, keyPrefix, { commandTimeout: COMMAND_TIMEOUT });
  const redis = () => running.apps[0].get(RedisConnections).get();
  /** Redis's clock, in ms. */
  const redisNow = async () => {
    const [seconds, micros] = await redis().time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };
  /** The lease ends of a semaphore's holders, earliest first (ms, Redis's clock). */
  const leaseEnds = async (name: string) =>
    (await redis().zrange(`${keyPrefix}sem:{${name}}`, '0', '-1', 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);

  it('300 tasks: never more than 3 holders at once, every task runs, each fencing token handed out once and increasing as granted', async () => {
    const command: TasksCommand = { name: 'reports', permits: PERMITS, tasks: TASKS_PER_INSTANCE, counter: `${keyPrefix}inside` };
    const inProcess = (app: INestApplicationContext) => runTasks(app.get(LockService), app.get(RedisConnections).get(), command);
    const perInstance = await Promise.all([
      running.worker.request<PermitRun[]>({ op: 'tasks', ...command }),
      ...running.apps.map(inProcess),
    ]);

    const runs = perInstance.flat();
    expect(runs).toHaveLength(3 * TASKS_PER_INSTANCE);
    // Measured by the tasks themselves, across the three instances: at most 3 at once, and 3 reached.
    expect(Math.max(...runs.map((run) => run.inside))).toBe(PERMITS);
    expect(Math.min(...runs.map((run) => run.inside))).toBeGreaterThanOrEqual(1);
    // One fencing token per grant, none twice or skipped, and on each instance increasing in the order granted.
    const tokens = runs.map((run) => run.token).sort((a, b) => a - b);
    expect(tokens).toEqual(Array.from({ length: 3 * TASKS_PER_INSTANCE }, (_, i) => tokens[0] + i));
    for (const instance of perInstance) {
      expect(instance).toHaveLength(TASKS_PER_INSTANCE);
      expect(instance.every((run, i) => i === 0 || run.token > instance[i - 1].token)).toBe(true);
    }
    expect(await redis().get(command.counter)).toBe('0');
    expect(await running.apps[1].get(LockService).semaphore('reports', PERMITS).available()).toBe(PERMITS);
  }, 120_000);

  it("gives the permit of a holder killed with kill -9 back when its lease ends on Redis's clock, not before", async () => {
    const name = 'killed';
    const locks = running.apps[0].get(LockService);
    const semaphore = locks.semaphore(name, PERMITS);
    const others = await Promise.all([1, 2].map(() => semaphore.acquire({ ttl: '30s' })));
    const worker = await WorkerProcess.start('semaphore-worker', {
      connection: connection(),
      keyPrefix,
      options: { commandTimeout: COMMAND_TIMEOUT },
    });
    const workerToken = await worker.request<number>({ op: 'hold', name, permits: PERMITS, ttl: '2s' });
    // The worker's lease ends first (2 s against 30 s).
    const [workerLeaseEnd] = await leaseEnds(name);
    worker.kill('SIGKILL');
    expect(await worker.exited).toBeNull();

    // Dead, but its lease runs on: its permit is not free yet.
    expect(await semaphore.tryAcquire()).toBeNull();
    expect(await semaphore.available()).toBe(0);
    expect(await redisNow()).toBeLessThan(workerLeaseEnd);

    const next = await running.apps[1].get(LockService).semaphore(name, PERMITS).acquire({ wait: '20s', ttl: '60s' });
    // Its lease (the last to end) started when it was granted: at or after the dead holder's lease ended.
    const grantedAt = (await leaseEnds(name)).at(-1)! - 60_000;
    expect(grantedAt).toBeGreaterThanOrEqual(workerLeaseEnd);
    expect(next.fencingToken).toBeGreaterThan(workerToken);
    expect((await leaseEnds(name)).length).toBe(3);
    await Promise.all([next, ...others].map((permit) => permit.release()));
    expect(await semaphore.available()).toBe(PERMITS);
  }, 60_000);
});
