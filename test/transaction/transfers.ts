import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS_CLIENT, RedisKeys, TransactionService, type TransactionResult } from '../../lib/index.js';

/** Ten accounts sharing a hash tag (one Cluster slot), 100 each. */
export const ACCOUNTS = Array.from({ length: 10 }, (_, i) => `{bank}:account:${i}`);
export const OPENING_BALANCE = 100;

/** Sets every account to the opening balance. */
export async function openAccounts(app: INestApplicationContext): Promise<void> {
  const redis = app.get<Redis>(REDIS_CLIENT);
  const keys = app.get(RedisKeys);
  await Promise.all(ACCOUNTS.map((account) => redis.set(keys.prefix + account, OPENING_BALANCE)));
}

/** Every account's balance, read outside any transaction. */
export async function balances(app: INestApplicationContext): Promise<number[]> {
  const redis = app.get<Redis>(REDIS_CLIENT);
  const keys = app.get(RedisKeys);
  return Promise.all(ACCOUNTS.map(async (account) => Number(await redis.get(keys.prefix + account))));
}

/** Moves 1 to 20 between two random accounts, unless the first has less (the same as the worker's). */
export function randomTransfer(app: INestApplicationContext): Promise<TransactionResult<void>> {
  const from = ACCOUNTS[Math.floor(Math.random() * ACCOUNTS.length)];
  const others = ACCOUNTS.filter((account) => account !== from);
  const to = others[Math.floor(Math.random() * others.length)];
  const amount = 1 + Math.floor(Math.random() * 20);
  return app.get(TransactionService).optimistic(
    [from, to],
    async (tx) => {
      const [balance] = (await tx.mget(from, to)).map(Number);
      if (balance < amount) tx.abort('insufficient funds');
      tx.incrby(from, -amount);
      tx.incrby(to, amount);
    },
    { maxAttempts: 1_000, backoff: { minDelay: '1ms', maxDelay: '20ms' } },
  );
}

/** What a batch of transfers came to, as the worker answers it. */
export interface TransferCounts {
  committed: number;
  aborted: number;
  retried: number;
}

export function countOutcomes(outcomes: readonly TransactionResult<void>[]): TransferCounts {
  return {
    committed: outcomes.filter((outcome) => outcome.committed).length,
    aborted: outcomes.filter((outcome) => !outcome.committed).length,
    retried: outcomes.filter((outcome) => outcome.attempts > 1).length,
  };
}
