import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { LockService, REDIS_CLIENT } from '../../lib/index.js';
import { appInstances } from '../support/app-instances.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';

const TIMES = 20;

describe.each(topologies)('a lock shared by three app instances (one in a child process) on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  const running = appInstances('lock-worker', connection, keyPrefix);

  it('keeps a non-atomic read-modify-write exact, and hands out every fencing token once', async () => {
    const counter = `${keyPrefix}counter:{c}`;
    const increment = (app: INestApplicationContext) => {
      const locks = app.get(LockService);
      const redis = app.get<Redis>(REDIS_CLIENT);
      return Promise.all(
        Array.from({ length: TIMES }, () =>
          locks.using(
            'counter',
            async (lock) => {
              const value = Number((await redis.get(counter)) ?? 0);
              await new Promise((resolve) => setTimeout(resolve, 2));
              await redis.set(counter, String(value + 1));
              return lock.fencingToken;
            },
            { wait: '30s', ttl: '5s' },
          ),
        ),
      );
    };
    const [fromWorker, ...inProcess] = await Promise.all([
      running.worker.request<number[]>({ op: 'increment', lock: 'counter', counter, times: TIMES }),
      ...running.apps.map(increment),
    ]);
    expect(await running.apps[0].get<Redis>(REDIS_CLIENT).get(counter)).toBe(String(3 * TIMES));
    const tokens = [...fromWorker, ...inProcess.flat()].sort((a, b) => a - b);
    expect(tokens).toEqual(Array.from({ length: 3 * TIMES }, (_, i) => tokens[0] + i));
  });
});
