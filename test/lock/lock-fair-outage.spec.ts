import { Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LockLostError, LockNotAcquiredError, LockService } from '../../lib/index.js';
import { startContext } from '../support/testing-app.js';
import { FairQueue, QUICK_FAIR } from './fair-queue.js';
import { ownRedisSetups, type OwnRedis } from '../support/own-redis.js';

const quickReconnect = { commandTimeout: '300ms', reconnect: { minDelay: '20ms', maxDelay: '100ms' } } as const;

describe.each(ownRedisSetups([]))('fair locks while Redis is down, on $topology', ({ start }) => {
  let redis: OwnRedis;
  let app: INestApplicationContext;
  let locks: LockService;
  beforeAll(async () => {
    redis = await start();
    app = await startContext({ connection: redis.connection, ...quickReconnect, lock: QUICK_FAIR });
    locks = app.get(LockService);
  });
  afterAll(async () => {
    await app?.close();
    await redis?.destroy();
  });

  it("fail with 'store-unavailable' (503): a new acquisition, and a waiter's wait; the holder learns of its lost lease through its signal", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const holder = await locks.acquire('desk', { fair: true, ttl: '900ms', autoExtend: true });
      const waiting = locks.acquire('desk', { fair: true, wait: '1m' }).catch((error: unknown) => error);
      const lost = new Promise((resolve) => holder.signal.addEventListener('abort', () => resolve(holder.signal.reason)));
      await new FairQueue(app, 'desk').untilWaiting(1);
      await (await redis.serverOf('desk')).stop();

      const error = await waiting;
      expect(error).toBeInstanceOf(LockNotAcquiredError);
      expect(error).toMatchObject({ reason: 'store-unavailable', keys: ['desk'] });
      const refused = (await locks.acquire('desk', { fair: true, wait: '5s' }).catch((caught: unknown) => caught)) as LockNotAcquiredError;
      expect(refused).toMatchObject({ reason: 'store-unavailable' });
      expect(refused.getStatus()).toBe(503);
      // Another key in the same slot (on a Cluster, the other masters still answer).
      await expect(locks.tryAcquire('{desk}:other', { fair: true })).rejects.toMatchObject({ reason: 'store-unavailable' });

      expect(await lost).toBeInstanceOf(LockLostError);
      expect(holder.lost).toBe(true);
      await holder.release();
      // Fair and plain locks share the connection's outage log: said once.
      const outages = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('unavailable to locks'));
      expect(outages).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
    }
  }, 60_000);
});
