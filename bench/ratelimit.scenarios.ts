import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { RateLimitService, RedisPatternsModule, RedisThrottlerStorage, type RateLimitPolicy } from '../lib/index.js';
import { KEY_COUNT } from './core.scenarios.js';
import type { Scenario } from './harness.js';

/** High enough that every call is admitted: every scenario does the work of an admitted call. */
const LIMIT = 1e9;
const WINDOW_MS = 60_000;
const GROUP = 'rate limit decision';

const caller = (i: number) => `caller-${i % KEY_COUNT}`;
const policy = (name: string, algorithm: RateLimitPolicy['algorithm']): RateLimitPolicy => ({
  name,
  algorithm,
  limit: LIMIT,
  window: WINDOW_MS,
});
const sliding = policy('sliding', 'sliding-window');
const fixed = policy('fixed', 'fixed-window');
const bucket = policy('bucket', 'token-bucket');

/**
 * One rate-limit decision for one of KEY_COUNT callers: RateLimitService.consume with each
 * algorithm, beside the hand-written fixed window (INCR + PEXPIRE NX: pipelined, the baseline, and
 * in a MULTI), rate-limiter-flexible's RateLimiterRedis, and @nestjs/throttler's storage: ours
 * (RedisThrottlerStorage: each hit counted for its own ttl, as throttler's in-memory storage does)
 * and @nest-lab/throttler-storage-redis (a fixed window), called as ThrottlerGuard calls them.
 * Each run answers whether the call was admitted; all must be before anything is measured.
 */
export async function rateLimitScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  // rate-limiter-flexible's docs advise a client without the offline queue; it must be ready before use.
  const flexibleClient = new Redis(url, { enableOfflineQueue: false });
  await new Promise((resolve, reject) => flexibleClient.once('ready', resolve).once('error', reject));
  const flexible = new RateLimiterRedis({
    storeClient: flexibleClient,
    useRedisPackage: false,
    keyPrefix: 'bench-rlflx',
    points: LIMIT,
    duration: WINDOW_MS / 1000,
  });
  const throttlerClient = new Redis(url);
  const throttler = new ThrottlerStorageRedisService(throttlerClient);

  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-rl:' })] })
  class RateLimitBenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(RateLimitBenchModule, { logger: false });
  const service = app.get(RateLimitService);
  const storage = app.get(RedisThrottlerStorage);
  const consume = async (i: number, limit: RateLimitPolicy) => {
    const decision = await service.consume(caller(i), limit);
    // Admitted unchecked (Redis unavailable, failing open) would measure nothing: stop the run.
    if (decision.unavailable) throw new Error('RateLimitService answered without Redis');
    return decision.allowed;
  };

  const scenarios: Scenario[] = [
    {
      group: GROUP,
      name: 'raw ioredis pipeline INCR + PEXPIRE NX (fixed window)',
      baseline: true,
      run: async (i) => {
        const key = `bench-raw-rl:${caller(i)}`;
        const replies = await raw.pipeline().incr(key).pexpire(key, WINDOW_MS, 'NX').exec();
        return (replies?.[0][1] as number) <= LIMIT;
      },
    },
    {
      group: GROUP,
      name: 'raw ioredis MULTI INCR + PEXPIRE NX (fixed window)',
      run: async (i) => {
        const key = `bench-raw-multi-rl:${caller(i)}`;
        const replies = await raw.multi().incr(key).pexpire(key, WINDOW_MS, 'NX').exec();
        return (replies?.[0][1] as number) <= LIMIT;
      },
    },
    { group: GROUP, name: 'RateLimitService.consume, sliding-window', run: (i) => consume(i, sliding) },
    { group: GROUP, name: 'RateLimitService.consume, fixed-window', run: (i) => consume(i, fixed) },
    { group: GROUP, name: 'RateLimitService.consume, token-bucket', run: (i) => consume(i, bucket) },
    {
      group: GROUP,
      name: 'rate-limiter-flexible RateLimiterRedis.consume',
      run: async (i) => (await flexible.consume(caller(i))).remainingPoints >= 0,
    },
    {
      group: GROUP,
      name: 'RedisThrottlerStorage.increment',
      run: async (i) => {
        const answer = await storage.increment(caller(i), WINDOW_MS, LIMIT, WINDOW_MS, 'default');
        // Admitted unchecked (Redis unavailable, failing open) would measure nothing: stop the run.
        if (answer.totalHits === 0) throw new Error('RedisThrottlerStorage answered without Redis');
        return !answer.isBlocked;
      },
    },
    {
      group: GROUP,
      name: '@nest-lab/throttler-storage-redis increment',
      run: async (i) => !(await throttler.increment(caller(i), WINDOW_MS, LIMIT, WINDOW_MS, 'default')).isBlocked,
    },
  ];
  for (const scenario of scenarios) {
    if ((await scenario.run(0)) !== true) throw new Error(`${scenario.name}: the first call was not admitted`);
  }
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), flexibleClient.quit(), throttlerClient.quit(), app.close()]);
    },
  };
}
