import { Logger, type INestApplicationContext } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CrossSlotError,
  REDIS_CLIENT,
  RedisKeys,
  RedisUnavailableError,
  TransactionCommandError,
  TransactionConflictError,
  TransactionPoolTimeoutError,
  TransactionService,
} from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';
import { ACCOUNTS, OPENING_BALANCE, balances, countOutcomes, openAccounts, randomTransfer, type TransferCounts } from './transfers.js';

const TRANSFERS = 500;
const roomy = { transaction: { poolSize: 8, acquireTimeout: '30s' } } as const;

function expectBooksBalanced(found: number[], counts: TransferCounts[]): void {
  expect(found.reduce((a, b) => a + b)).toBe(ACCOUNTS.length * OPENING_BALANCE);
  expect(Math.min(...found)).toBeGreaterThanOrEqual(0);
  const total = counts.reduce((sum, c) => ({
    committed: sum.committed + c.committed,
    aborted: sum.aborted + c.aborted,
    retried: sum.retried + c.retried,
  }));
  expect(total.committed + total.aborted).toBe(TRANSFERS);
  expect(total.committed).toBeGreaterThan(0);
  // Conflicts happened, and were retried.
  expect(total.retried).toBeGreaterThan(0);
}

describe.each(topologies)('optimistic transactions on $topology', ({ topology, connection }) => {
  let app: INestApplicationContext;
  let transactions: TransactionService;
  let redis: Redis | Cluster;
  let prefix: string;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), ...roomy });
    transactions = app.get(TransactionService);
    redis = app.get(REDIS_CLIENT);
    prefix = app.get(RedisKeys).prefix;
  });
  afterAll(() => app?.close());

  it('keeps 500 concurrent random transfers from two instances exact, none overdrawn', async () => {
    const second = await startContext({ connection: connection(), keyPrefix: prefix, ...roomy });
    try {
      await openAccounts(app);
      const outcomes = await Promise.all(Array.from({ length: TRANSFERS }, (_, i) => randomTransfer(i % 2 ? app : second)));
      expectBooksBalanced(await balances(app), [countOutcomes(outcomes)]);
    } finally {
      await second.close();
    }
  });

  it('commits the writes with the key prefix, returns the result, and reads the data as it was before the writes', async () => {
    const outcome = await transactions.optimistic('{p}:profile', async (tx) => {
      tx.hset('{p}:profile', { name: 'Ada', visits: 1 });
      tx.hincrby('{p}:profile', 'visits', 2);
      tx.set('{p}:note', 'hi', { ttl: '1m' });
      tx.zadd('{p}:board', 12.5, 'ada');
      tx.rpush('{p}:log', 'a', 'b');
      tx.sadd('{p}:tags', 'x');
      tx.write('SETRANGE', tx.key('{p}:raw'), 0, 'raw');
      return { seen: await tx.hgetall('{p}:profile'), exists: await tx.exists('{p}:profile') };
    });
    expect(outcome).toEqual({ committed: true, attempts: 1, result: { seen: {}, exists: 0 } });
    expect(await redis.hgetall(`${prefix}{p}:profile`)).toEqual({ name: 'Ada', visits: '3' });
    const read = await transactions.optimistic(['{p}:profile', '{p}:board'], async (tx) => ({
      name: await tx.hget('{p}:profile', 'name'),
      score: await tx.zscore('{p}:board', 'ada'),
      length: await tx.llen('{p}:log'),
      members: await tx.scard('{p}:tags'),
      ttl: await tx.ttl('{p}:note'),
      raw: await tx.read('GET', tx.key('{p}:raw')),
    }));
    expect(read.result).toMatchObject({ name: 'Ada', score: 12.5, length: 2, members: 1, raw: 'raw' });
    expect(read.result?.ttl).toBeGreaterThan(50_000);
  });

  it('writes nothing when the body throws, and rethrows its error as is', async () => {
    const failure = new Error('no such customer');
    await expect(
      transactions.optimistic('{t}:a', async (tx) => {
        tx.set('{t}:a', 'written');
        await tx.get('{t}:a');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await redis.exists(`${prefix}{t}:a`)).toBe(0);
    // The connection was cleaned (UNWATCH) and is used again: a change by someone else does not fail the next one.
    await redis.set(`${prefix}{t}:a`, 'other');
    expect((await transactions.optimistic('{t}:a', (tx) => tx.set('{t}:a', 'mine'))).attempts).toBe(1);
    expect(transactions.openConnections).toBeLessThanOrEqual(8);
  });

  it('ends without writing on tx.abort(reason)', async () => {
    const outcome = await transactions.optimistic('{t}:b', async (tx) => {
      tx.set('{t}:b', 'written');
      tx.abort('insufficient funds');
    });
    expect(outcome).toEqual({ committed: false, attempts: 1, result: undefined, reason: 'insufficient funds' });
    expect(await redis.exists(`${prefix}{t}:b`)).toBe(0);
  });

  it('reports a command Redis refused: before EXEC nothing is written, inside it the others are applied (no rollback)', async () => {
    const refused = await transactions
      .optimistic('{e}:a', (tx) => {
        tx.set('{e}:a', 'written');
        tx.write('NO-SUCH-COMMAND', tx.key('{e}:a'));
      })
      .catch((caught: unknown) => caught);
    expect(refused).toBeInstanceOf(TransactionCommandError);
    expect(refused).toMatchObject({ committed: false });
    expect(await redis.exists(`${prefix}{e}:a`)).toBe(0);
    await redis.hset(`${prefix}{e}:hash`, 'f', '1');
    const failed = await transactions
      .optimistic('{e}:hash', (tx) => {
        tx.incrby('{e}:hash', 1);
        tx.set('{e}:b', 'applied');
      })
      .catch((caught: unknown) => caught);
    expect(failed).toBeInstanceOf(TransactionCommandError);
    expect(failed).toMatchObject({
      committed: true,
      errors: [expect.objectContaining({ message: expect.stringMatching(/^WRONGTYPE/) }), undefined],
    });
    expect(await redis.get(`${prefix}{e}:b`)).toBe('applied');
  });

  it('gives up after maxAttempts with a TransactionConflictError (409) naming the keys and the attempts', async () => {
    let runs = 0;
    const error = await transactions
      .optimistic(
        ['{c}:x', '{c}:y'],
        async (tx) => {
          runs++;
          await tx.get('{c}:x');
          // Someone else writes a watched key each time.
          await redis.incr(`${prefix}{c}:y`);
          tx.set('{c}:x', 'mine');
        },
        { maxAttempts: 3, backoff: { minDelay: 1, maxDelay: 2 } },
      )
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransactionConflictError);
    expect(error).toMatchObject({ keys: ['{c}:x', '{c}:y'], attempts: 3 });
    expect((error as TransactionConflictError).getStatus()).toBe(409);
    expect((error as Error).message).toMatch(/"\{c\}:x", "\{c\}:y".*3 attempts/);
    expect(runs).toBe(3);
    expect(await redis.exists(`${prefix}{c}:x`)).toBe(0);
  });

  it('fails with a TransactionPoolTimeoutError (503) when no connection frees up within acquireTimeout', async () => {
    const small = await startContext({ connection: connection(), transaction: { poolSize: 1, acquireTimeout: '100ms' } });
    const service = small.get(TransactionService);
    let release!: () => void;
    const holding = service.optimistic('{q}:a', () => new Promise<void>((resolve) => (release = resolve)));
    const started = performance.now();
    const error = await service.optimistic('{q}:b', () => undefined).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransactionPoolTimeoutError);
    expect(error).toMatchObject({ keys: ['{q}:b'], poolSize: 1 });
    expect((error as TransactionPoolTimeoutError).getStatus()).toBe(503);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
    release();
    expect((await holding).committed).toBe(true);
    // Freed: the next one gets the connection.
    expect((await service.optimistic('{q}:b', () => 'ok')).result).toBe('ok');
    await small.close();
  });

  if (topology === 'cluster') {
    it('refuses keys in different slots with a CrossSlotError before sending anything', async () => {
      let ran = false;
      const error = await transactions
        .optimistic(['account:1', 'account:2'], () => {
          ran = true;
        })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CrossSlotError);
      expect(error).toMatchObject({ keys: ['account:1', 'account:2'] });
      expect(ran).toBe(false);
      // Inside the body too: a key of another slot.
      await expect(transactions.optimistic('{s}:1', (tx) => tx.set('elsewhere', 1))).rejects.toThrow(CrossSlotError);
      expect((await transactions.optimistic(['{acct}:1', '{acct}:2'], () => 'same slot')).committed).toBe(true);
    });

    it('follows a slot that moved (MOVED): the attempt is retried on the new master', async () => {
      const cluster = redis as Cluster;
      const key = `${prefix}{m}:k`;
      const slot = Number(await cluster.cluster('KEYSLOT', key));
      const owner = cluster.slots[slot][0];
      // Make the client believe the slot is on another master, as after a migration.
      const other = cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` !== owner)!;
      cluster.slots[slot] = [`${other.options.host}:${other.options.port}`];
      // maxAttempts 1: following the redirection uses none of the attempts.
      const outcome = await transactions.optimistic('{m}:k', (tx) => tx.set('{m}:k', 'moved'), { maxAttempts: 1 });
      expect(outcome).toMatchObject({ committed: true, attempts: 1 });
      expect(await cluster.get(key)).toBe('moved');
      expect(cluster.slots[slot][0]).toBe(owner);
    });

    afterEach(() => vi.restoreAllMocks());

    it('a slot that keeps moving is an outage (RedisUnavailableError, 503) after 5 redirections, never a conflict', async () => {
      vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const cluster = redis as Cluster;
      const key = `${prefix}{mm}:k`;
      const slot = Number(await cluster.cluster('KEYSLOT', key));
      const owner = cluster.slots[slot][0];
      const other = cluster.nodes('master').find((node) => `${node.options.host}:${node.options.port}` !== owner)!;
      const wrong = `${other.options.host}:${other.options.port}`;
      // Every refresh of the slot map still says the other master, as during a failover.
      const refreshes = vi.spyOn(cluster, 'refreshSlotsCache').mockImplementation(((callback?: () => void) => {
        cluster.slots[slot] = [wrong];
        callback?.();
      }) as never);
      cluster.slots[slot] = [wrong];
      let runs = 0;
      const error = await transactions
        .optimistic(
          '{mm}:k',
          (tx) => {
            runs++;
            tx.set('{mm}:k', 'never');
          },
          { maxAttempts: 20 },
        )
        .catch((caught: unknown) => caught);
      refreshes.mockRestore();
      cluster.slots[slot] = [owner];
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error).toMatchObject({ statusCode: 503, outage: 'failover' });
      expect(runs).toBe(6);
      expect(await cluster.get(key)).toBeNull();
      expect((await transactions.optimistic('{mm}:k', () => 'ok')).committed).toBe(true);
    });
  }
});

describe.each(topologies)('transfers from an instance in another process, on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let app: INestApplicationContext;
  let worker: WorkerProcess;
  beforeAll(async () => {
    [app, worker] = await Promise.all([
      startContext({ connection: connection(), keyPrefix, ...roomy }),
      WorkerProcess.start('transaction-worker', { connection: connection(), keyPrefix }),
    ]);
  });
  afterAll(async () => {
    worker?.endInput();
    await worker?.exited;
    await app?.close();
  });

  it('keeps 500 concurrent random transfers exact, none overdrawn', async () => {
    await openAccounts(app);
    const [fromWorker, here] = await Promise.all([
      worker.request<TransferCounts>({ op: 'transfers', accounts: ACCOUNTS, times: TRANSFERS / 2 }),
      Promise.all(Array.from({ length: TRANSFERS / 2 }, () => randomTransfer(app))),
    ]);
    expectBooksBalanced(await balances(app), [fromWorker, countOutcomes(here)]);
  });
});
