import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitService, type RateLimitPolicy } from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';

const LIMIT = 50;
const FLOOD = 1000;

describe.each(topologies)('a flood over three app instances (one in a child process) on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let instances: INestApplicationContext[];
  let worker: WorkerProcess;
  beforeAll(async () => {
    [instances, worker] = await Promise.all([
      Promise.all([1, 2].map(() => startContext({ connection: connection(), keyPrefix }))),
      WorkerProcess.start('ratelimit-worker', { connection: connection(), keyPrefix }),
    ]);
  });
  afterAll(async () => {
    worker?.endInput();
    await worker?.exited;
    await Promise.all(instances.map((app) => app.close()));
  });

  it.each<[string, RateLimitPolicy]>([
    // An hour: a fixed window is aligned to the clock, and the flood must not straddle its end.
    ['fixed-window', { limit: LIMIT, window: '1h', algorithm: 'fixed-window' }],
    ['sliding-window', { limit: LIMIT, window: '1h', algorithm: 'sliding-window' }],
    ['token-bucket', { limit: LIMIT, window: '1h', algorithm: 'token-bucket' }],
  ])('admits exactly the limit out of %s', async (algorithm, policy) => {
    const key = `flood-${algorithm}`;
    const share = Math.ceil(FLOOD / 3);
    const [fromWorker, ...inProcess] = await Promise.all([
      worker.request<number>({ op: 'flood', key, policy, count: FLOOD - 2 * share }),
      ...instances.map(async (app) => {
        const limits = app.get(RateLimitService);
        const decisions = await Promise.all(Array.from({ length: share }, () => limits.consume(key, policy)));
        return decisions.filter((decision) => decision.allowed).length;
      }),
    ]);
    expect(fromWorker + inProcess[0] + inProcess[1]).toBe(LIMIT);
    // Nothing is left for anyone afterwards.
    expect((await instances[0].get(RateLimitService).consume(key, policy)).allowed).toBe(false);
  });
});
