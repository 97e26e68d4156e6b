import { describe, expect, it } from 'vitest';
import { RedisThrottlerStorage } from '../../lib/index.js';
import { appInstances } from '../support/app-instances.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';

const LIMIT = 50;
const FLOOD = 1000;
const HOUR = 3_600_000;

describe.each(topologies)('@nestjs/throttler hits flooding three app instances (one in a child process) on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  // This suite is about counting, not outages: a flood on a loaded machine may take more than the
  // default second, and a hit that times out must fail the test, not be admitted unchecked.
  const running = appInstances('throttler-worker', connection, keyPrefix, { commandTimeout: '10s', rateLimit: { onStoreError: 'closed' } });

  it.each([
    ['with a block', HOUR],
    ['without a block', 0],
  ])('admits exactly the limit %s', async (_, blockDuration) => {
    const key = `flood-${blockDuration}`;
    const share = Math.ceil(FLOOD / 3);
    const [fromWorker, ...inProcess] = await Promise.all([
      running.worker.request<number>({ op: 'flood', key, ttl: HOUR, limit: LIMIT, blockDuration, count: FLOOD - 2 * share }),
      ...running.apps.map(async (app) => {
        const storage = app.get(RedisThrottlerStorage);
        const answers = await Promise.all(Array.from({ length: share }, () => storage.increment(key, HOUR, LIMIT, blockDuration, 'flood')));
        return answers.filter((answer) => !answer.isBlocked).length;
      }),
    ]);
    expect(fromWorker + inProcess[0] + inProcess[1]).toBe(LIMIT);
    // Refused hits were not counted: the count is the limit (and one more, the hit that started the block).
    expect(await running.apps[1].get(RedisThrottlerStorage).increment(key, HOUR, LIMIT, blockDuration, 'flood')).toMatchObject({
      isBlocked: true,
      totalHits: LIMIT + 1,
    });
  });
});
