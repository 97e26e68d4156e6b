import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Post, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Idempotent, RedisConnections, RedisKeys } from '../../lib/index.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';
import { runs, send, startHttpApp } from './idempotency-app.js';

const LEASE_MS = 1_500;

/** The same route as the worker's (see workers/idempotency-worker.ts), which finishes here. */
@Controller('jobs')
class SurvivorController {
  @Post('hang')
  @Idempotent()
  hang() {
    runs.set('survivor', (runs.get('survivor') ?? 0) + 1);
    return { by: 'survivor' };
  }
}

describe.each(topologies)('an idempotency key held by an instance in another process, on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let survivor: { app: INestApplication; url: string };
  let owner: WorkerProcess;
  beforeAll(async () => {
    [survivor, owner] = await Promise.all([
      startHttpApp(new ExpressAdapter(), { connection: connection(), keyPrefix, idempotency: { lease: LEASE_MS } }, [SurvivorController]),
      WorkerProcess.start('idempotency-worker', { connection: connection(), keyPrefix, lease: LEASE_MS }),
    ]);
  });
  afterAll(async () => {
    owner?.kill('SIGKILL');
    await survivor?.app.close();
  });

  it('is never taken over while its owner lives (past several leases), and is taken over once the owner is killed with SIGKILL', async () => {
    const redis = survivor.app.get(RedisConnections).get();
    const keys = survivor.app.get(RedisKeys);
    const key = randomUUID();
    const record = keys.tagged(['idem', key]);
    const ownerUrl = await owner.request<string>({ op: 'url' });
    const before = runs.get('survivor') ?? 0;
    const survivorRuns = () => (runs.get('survivor') ?? 0) - before;
    // The owner's request never answers: it hangs until its process dies.
    const hanging = send(`${ownerUrl}/jobs/hang`, { key }).catch((error: Error) => error);
    await expect.poll(() => redis.get(keys.key('idem-test', 'started')), { timeout: 10_000 }).toBe('1');
    const token = await redis.hget(record, 'token');
    expect(await redis.hget(record, 'state')).toBe('running');
    expect(await redis.pttl(record)).toBeLessThanOrEqual(LEASE_MS);

    // Three leases later the owner, alive, still holds the key: its renewals kept it.
    await sleep(3 * LEASE_MS);
    expect(await redis.hmget(record, 'state', 'token')).toEqual(['running', token]);
    const whileAlive = await send(`${survivor.url}/jobs/hang`, { key });
    expect([whileAlive.status, whileAlive.headers.get('retry-after')]).toEqual([409, '1']);
    expect(survivorRuns()).toBe(0);

    owner.kill('SIGKILL');
    await owner.exited;
    expect(await hanging).toBeInstanceOf(Error);
    // Its lease has not run out yet: still 409.
    expect((await send(`${survivor.url}/jobs/hang`, { key })).status).toBe(409);
    // Once it has, the next request takes the key over and runs.
    const statuses: number[] = [];
    await expect
      .poll(
        async () => {
          const response = await send(`${survivor.url}/jobs/hang`, { key });
          statuses.push(response.status);
          return response.status;
        },
        { timeout: 10_000, interval: 100 },
      )
      .toBe(201);
    expect(new Set(statuses.slice(0, -1))).toEqual(new Set(statuses.length > 1 ? [409] : []));
    expect(survivorRuns()).toBe(1);
    expect(await redis.hget(record, 'state')).toBe('done');
    const replay = await send(`${survivor.url}/jobs/hang`, { key });
    expect([replay.status, replay.json(), replay.headers.get('idempotent-replayed')]).toEqual([201, { by: 'survivor' }, 'true']);
    expect(survivorRuns()).toBe(1);
    expect(await redis.get(keys.key('idem-test', 'started'))).toBe('1');
  }, 60_000);
});
