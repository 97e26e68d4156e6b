import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys, type RedisClient } from '../../lib/index.js';
import { WorkerProcess } from '../support/worker-process.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

describe.each(topologies)('@WriteBehind with instances in separate processes on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  const keys = new RedisKeys(keyPrefix);
  let app: INestApplicationContext;
  let redis: RedisClient;
  const workers: WorkerProcess[] = [];
  const start = async (hang = false) => {
    const worker = await WorkerProcess.start('write-behind-worker', { connection: connection(), keyPrefix, hang });
    workers.push(worker);
    return worker;
  };
  beforeAll(async () => {
    // An instance of the test's own, to look into Redis.
    app = await startContext({ connection: connection(), keyPrefix });
    redis = app.get(RedisConnections).get();
  });
  afterAll(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await app?.close();
  });

  it('persists a write whose worker was killed with -9 mid-persist, on another process, with the newest value', async () => {
    const doomed = await start(true);
    await doomed.request({ op: 'save', profile: 'k', n: 1 });
    // The doomed process has begun persisting it, and hangs there.
    await expect.poll(() => redis.sismember(keys.tagged('wbt', 'started'), 'k:1'), { timeout: 10_000 }).toBe(1);
    doomed.kill('SIGKILL');
    await doomed.exited;

    const survivor = await start();
    await survivor.request({ op: 'save', profile: 'k', n: 2 });
    expect(await survivor.request<boolean>({ op: 'flush' })).toBe(true);
    expect(await redis.hget(keys.tagged('wbt', 'db'), 'k')).toBe('2');
    expect(await survivor.request({ op: 'lag' })).toEqual({ pending: 0, oldestMs: 0 });
    survivor.endInput();
    expect(await survivor.exited).toBe(0);
  }, 60_000);
});
