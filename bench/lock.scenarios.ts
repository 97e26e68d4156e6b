import { randomBytes } from 'node:crypto';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redlock as SesameRedlock } from '@sesamecare-oss/redlock';
import { Redis } from 'ioredis';
// redlock 5.0.0-beta.2 ships its types at dist/index.d.ts, but its "exports" has no "types"
// condition, so under NodeNext TypeScript does not find them (TS7016): they are taken from the file.
// @ts-expect-error TS7016, see above
import RedlockUntyped from 'redlock';
import type RedlockClass from '../node_modules/redlock/dist/index.js';
import { LockService, RedisPatternsModule, type Lock } from '../lib/index.js';
import { KEY_COUNT } from './core.scenarios.js';
import type { Scenario } from './harness.js';

const DISTINCT = 'lock, distinct keys';
const CONTENDED = 'lock, one contended key';
const TTL_MS = 30_000;
/** How long a contended acquisition may wait: far more than any should need, so none fails. */
const WAIT_MS = 10_000;
/**
 * The pause between attempts on a busy key, the same for every library: uniform over about
 * 0-10 ms. Ours: full jitter with minDelay = maxDelay = 10ms; redlock: 5 ms ± 5 ms.
 */
const RETRY_MS = 10;
/** redlock counts attempts, not time: enough attempts of ~5 ms each to cover WAIT_MS. */
const REDLOCK_RETRY = { retryCount: Math.ceil(WAIT_MS / (RETRY_MS / 2)), retryDelay: RETRY_MS / 2, retryJitter: RETRY_MS / 2 };
/** Every lock key of this suite starts with this, so leftovers can be found. */
const PREFIX = 'bench-lock';

/** redlock v5, typed (see its import); also used by the hand-off report. */
export const Redlock = RedlockUntyped as typeof RedlockClass;
export type Redlock = RedlockClass;

/** The hand-written release: delete the key only if it still holds the caller's token. */
const RELEASE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

const distinctKey = (i: number) => `k-${i % KEY_COUNT}`;
const CONTENDED_KEY = 'contended';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Distributed locks: acquire + release on one of KEY_COUNT keys (no contention), and on one key
 * that every worker wants (each waits its turn, holds it for one turn of the event loop, then
 * releases). Beside the hand-written pattern (SET NX PX with a random token, and a token-checked
 * Lua release by EVALSHA, the baseline): LockService.acquire + release (no renewal), the same
 * with `fair: true` (waiters in line, told of releases), a semaphore of one permit (acquire +
 * release), LockService.using (renewal on), redlock v5 and @sesamecare-oss/redlock on one node.
 *
 * Every acquisition must succeed and every release must find its own lock: anything else throws
 * and stops the run, since the throughput would then mean nothing. On the contended key, each
 * scenario also checks that no two of its workers ever hold the lock at once.
 */
export async function lockScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const releaseSha = (await raw.script('LOAD', RELEASE_SCRIPT)) as string;
  const redlockClient = new Redis(url);
  const redlock = new Redlock([redlockClient]);
  const sesameClient = new Redis(url);
  const sesame = new SesameRedlock([sesameClient]);

  @Module({
    imports: [
      RedisPatternsModule.forRoot({
        connection: { url },
        keyPrefix: `${PREFIX}:`,
        lock: { ttl: TTL_MS, retry: { minDelay: RETRY_MS, maxDelay: RETRY_MS } },
      }),
    ],
  })
  class LockBenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(LockBenchModule, { logger: false });
  const locks = app.get(LockService);

  /** redlock v5 and @sesamecare-oss/redlock share one API; retryCount 0 is one attempt, like a wait of 0. */
  const redlockHold =
    (instance: Redlock | SesameRedlock, prefix: string) => async (key: string, waitMs: number, work?: () => Promise<void>) => {
      const lock = await instance.acquire([`${prefix}:${key}`], TTL_MS, waitMs === 0 ? { retryCount: 0 } : REDLOCK_RETRY);
      try {
        if (work) await work();
      } finally {
        // Rejects when the lock was not found (after the instance's retries).
        await lock.release();
      }
    };

  /** Takes a `Lock` (a lock, a semaphore's permit, a read-write lock's side), runs `work` if given, and releases it; a release that released nothing throws. */
  const lockHold =
    (acquire: (key: string, waitMs: number) => Promise<Lock>) => async (key: string, waitMs: number, work?: () => Promise<void>) => {
      const lock = await acquire(key, waitMs);
      let released: boolean;
      try {
        if (work) await work();
      } finally {
        released = await lock.release();
      }
      if (!released) throw new Error('lock.release() released nothing');
    };
  /** A side of the read-write lock on `key`. */
  const readWriteHold = (side: 'read' | 'write') => lockHold((key, waitMs) => locks.readWrite(key)[side].acquire({ wait: waitMs }));

  /**
   * One acquire + release per library: `hold` takes the lock on `key` (waiting up to `waitMs`;
   * 0: one attempt), runs `work` if given, and releases. A failed acquisition throws, and so does
   * a release that did not find the caller's own lock.
   */
  const flavours: { name: string; baseline?: boolean; hold(key: string, waitMs: number, work?: () => Promise<void>): Promise<void> }[] = [
    {
      name: 'raw ioredis SET NX PX + EVALSHA token-checked release',
      baseline: true,
      hold: async (key, waitMs, work) => {
        const redisKey = `${PREFIX}-raw:${key}`;
        const token = randomBytes(16).toString('hex');
        const started = performance.now();
        while ((await raw.set(redisKey, token, 'PX', TTL_MS, 'NX')) !== 'OK') {
          if (performance.now() - started >= waitMs) throw new Error(`not acquired after ${Math.round(performance.now() - started)}ms`);
          await sleep(Math.max(1, Math.random() * RETRY_MS));
        }
        let released: unknown;
        try {
          if (work) await work();
        } finally {
          released = await raw.evalsha(releaseSha, 1, redisKey, token);
        }
        if (released !== 1) throw new Error('the lock was not ours any more at release');
      },
    },
    {
      name: 'LockService.acquire + lock.release()',
      hold: lockHold((key, waitMs) => locks.acquire(key, { wait: waitMs })),
    },
    // Waiters queue in Redis and are told of each release; without a wait, one try that never queues.
    {
      name: 'LockService.acquire({ fair: true }) + lock.release()',
      hold: lockHold((key, waitMs) => locks.acquire(key, { fair: true, wait: waitMs })),
    },
    // A semaphore of one permit excludes like a lock: its script (a sorted set of leases on Redis's clock) against SET NX.
    { name: 'LockService.semaphore(key, 1).acquire + release', hold: lockHold((key, wait) => locks.semaphore(key, 1).acquire({ wait })) },
    {
      // using releases by itself and only logs a release that failed; a lock left behind would
      // make a later acquisition of its key fail, and the leftover check below find it.
      name: 'LockService.using (autoExtend on)',
      hold: (key, waitMs, work) =>
        locks.using(
          key,
          async () => {
            if (work) await work();
          },
          { wait: waitMs },
        ),
    },
    {
      // The write side of a read-write lock: exclusive, so it belongs in the contended group too.
      name: 'LockService.readWrite(key).write.acquire + release',
      hold: readWriteHold('write'),
    },
    { name: 'redlock v5 acquire + release, one node', hold: redlockHold(redlock, `${PREFIX}-redlock`) },
    { name: '@sesamecare-oss/redlock acquire + release, one node', hold: redlockHold(sesame, `${PREFIX}-sesame`) },
  ];

  const failures = new Map<string, number>();
  /** Counts the failure and throws it on, out of the scenario: the run stops. */
  const fail = (scenario: string, error: unknown): never => {
    const count = (failures.get(scenario) ?? 0) + 1;
    failures.set(scenario, count);
    throw new Error(`${scenario}: failure ${count}: ${(error as Error)?.message ?? error}`, { cause: error });
  };

  const scenarios: Scenario[] = [];
  for (const { name, baseline, hold } of flavours) {
    scenarios.push({
      group: DISTINCT,
      name,
      baseline,
      run: (i) => hold(distinctKey(i), 0).catch((error: unknown) => fail(`${DISTINCT}: ${name}`, error)),
    });
  }
  // Readers share the lock, so the read side has no row in the contended group (its exclusion check would fail by design).
  const readName = 'LockService.readWrite(key).read.acquire + release';
  const readHold = readWriteHold('read');
  scenarios.push({
    group: DISTINCT,
    name: readName,
    run: (i) => readHold(distinctKey(i), 0).catch((error: unknown) => fail(`${DISTINCT}: ${readName}`, error)),
  });
  for (const { name, baseline, hold } of flavours) {
    // The critical section: one turn of the event loop, during which no other worker of this
    // scenario may hold the lock. It ends before the release is sent, so it cannot overlap the next holder.
    let holding = false;
    const work = async () => {
      if (holding) throw new Error('two workers held the lock at once');
      holding = true;
      await new Promise(setImmediate);
      holding = false;
    };
    scenarios.push({
      group: CONTENDED,
      name,
      baseline,
      run: () => hold(CONTENDED_KEY, WAIT_MS, work).catch((error: unknown) => fail(`${CONTENDED}: ${name}`, error)),
    });
  }

  /** Lock keys with a lease still running: a lock that was not released. Fence keys (no TTL) are left out. */
  const leftovers = async () => {
    const held: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) if ((await raw.pttl(key)) > 0) held.push(key);
    } while (cursor !== '0');
    return held;
  };
  for (const scenario of scenarios) await scenario.run(0);
  const held = await leftovers();
  if (held.length > 0) throw new Error(`locks still held after one acquire + release each: ${held.join(', ')}`);

  return {
    scenarios,
    async close() {
      const after = await leftovers();
      await Promise.all([raw.quit(), redlock.quit(), sesame.quit(), app.close()]);
      if (after.length > 0) throw new Error(`${after.length} locks still held after the run, e.g. ${after.slice(0, 5).join(', ')}`);
    },
  };
}
