import { describe, expect, it } from 'vitest';
import { RateLimitService, type RateLimitPolicy } from '../../lib/index.js';
import { appInstances } from '../support/app-instances.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';

const LIMIT = 50;
const FLOOD = 1000;
/**
 * A flood of 1,000 concurrent scripts on a loaded machine can keep one waiting past the default
 * 1 s, and a timed-out consume is admitted unchecked (fail-open): this suite is about exactness,
 * so its instances (the worker too) wait longer. Outages have their own suites.
 */
const FLOOD_COMMAND_TIMEOUT = '10s';

describe.each(topologies)('a flood over three app instances (one in a child process) on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  const running = appInstances('ratelimit-worker', connection, keyPrefix, { commandTimeout: FLOOD_COMMAND_TIMEOUT });

  it.each<[string, RateLimitPolicy]>([
    // An hour: a fixed window is aligned to the clock, and the flood must not straddle its end.
    ['fixed-window', { limit: LIMIT, window: '1h', algorithm: 'fixed-window' }],
    ['sliding-window', { limit: LIMIT, window: '1h', algorithm: 'sliding-window' }],
    ['token-bucket', { limit: LIMIT, window: '1h', algorithm: 'token-bucket' }],
  ])('admits exactly the limit out of %s', async (algorithm, policy) => {
    const key = `flood-${algorithm}`;
    const share = Math.ceil(FLOOD / 3);
    const [fromWorker, ...inProcess] = await Promise.all([
      running.worker.request<number>({ op: 'flood', key, policy, count: FLOOD - 2 * share }),
      ...running.apps.map(async (app) => {
        const limits = app.get(RateLimitService);
        const decisions = await Promise.all(Array.from({ length: share }, () => limits.consume(key, policy)));
        return decisions.filter((decision) => decision.allowed).length;
      }),
    ]);
    expect(fromWorker + inProcess[0] + inProcess[1]).toBe(LIMIT);
    // Nothing is left for anyone afterwards.
    expect((await running.apps[0].get(RateLimitService).consume(key, policy)).allowed).toBe(false);
  });
});
