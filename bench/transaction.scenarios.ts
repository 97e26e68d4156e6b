import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { REDIS_CLIENT, RedisPatternsModule, TransactionService, type RedisPatternsModuleOptions } from '../lib/index.js';
import type { Scenario } from './harness.js';

const TRANSFER = 'transaction transfer';
const AUTO_PIPELINING = 'auto-pipelining';
/** Accounts transfers pick from: few enough that concurrent transfers conflict now and then. */
const ACCOUNTS = 100;
/** Small values read by the auto-pipelining scenarios. */
const SMALL_KEYS = 1_000;

/** One transfer in one script: the same reads, check and writes as the optimistic body. */
const TRANSFER_LUA = `
local balance = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if balance < amount then return 0 end
redis.call('INCRBY', KEYS[1], -amount)
redis.call('INCRBY', KEYS[2], amount)
return 1`;

/** Two different accounts for the i-th transfer, and an amount. */
function pick(i: number): { from: number; to: number; amount: number } {
  const from = (i * 7919) % ACCOUNTS;
  const to = (from + 1 + ((i * 104_729) % (ACCOUNTS - 1))) % ACCOUNTS;
  return { from, to, amount: 1 + (i % 5) };
}

async function start(options: Partial<RedisPatternsModuleOptions> & { connection: RedisPatternsModuleOptions['connection'] }) {
  @Module({ imports: [RedisPatternsModule.forRoot(options)] })
  class TransactionBenchModule {}
  return NestFactory.createApplicationContext(TransactionBenchModule, { logger: false });
}

/**
 * Optimistic transactions and auto-pipelining:
 * - 'transaction transfer': a transfer between two of 100 accounts (read the balance, check it,
 *   two INCRBYs) as one Lua script with raw `EVAL` (the baseline), against
 *   `TransactionService.optimistic` (WATCH, MGET, MULTI/EXEC; retried on conflicts) with the
 *   default pool of 4 connections and with 16;
 * - 'auto-pipelining': GETs of small values through the module's client, without (the baseline)
 *   and with `autoPipelining: true`.
 */
export async function transactionScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const apps: INestApplicationContext[] = await Promise.all([
    start({ connection: { url }, keyPrefix: 'bench-tx:' }),
    start({ connection: { url }, keyPrefix: 'bench-tx:', transaction: { poolSize: 16 } }),
    start({ connection: { url }, keyPrefix: 'bench-ap:' }),
    start({ connection: { url }, keyPrefix: 'bench-ap:', autoPipelining: true }),
  ]);
  const [pool4, pool16] = apps.slice(0, 2).map((app) => app.get(TransactionService));
  const [plain, pipelined] = apps.slice(2).map((app) => app.get<Redis>(REDIS_CLIENT));
  const account = (n: number) => `{bank}:account:${n}`;
  const seed = raw.pipeline();
  for (let n = 0; n < ACCOUNTS; n++) seed.set(`bench-tx:${account(n)}`, 1_000_000_000);
  for (let n = 0; n < SMALL_KEYS; n++) seed.set(`bench-ap:small:${n}`, `value-${n}`);
  await seed.exec();

  const optimistic = (service: TransactionService) => (i: number) => {
    const { from, to, amount } = pick(i);
    return service.optimistic(
      [account(from), account(to)],
      async (tx) => {
        const [balance] = await tx.mget(account(from), account(to));
        if (Number(balance) < amount) tx.abort('insufficient funds');
        tx.incrby(account(from), -amount);
        tx.incrby(account(to), amount);
      },
      { maxAttempts: 1_000, backoff: { minDelay: '1ms', maxDelay: '20ms' } },
    );
  };
  const scenarios: Scenario[] = [
    {
      group: TRANSFER,
      name: 'raw EVAL of a transfer script',
      baseline: true,
      run: (i) => {
        const { from, to, amount } = pick(i);
        return raw.eval(TRANSFER_LUA, 2, `bench-tx:${account(from)}`, `bench-tx:${account(to)}`, amount);
      },
    },
    { group: TRANSFER, name: 'optimistic(), poolSize 4', run: optimistic(pool4) },
    { group: TRANSFER, name: 'optimistic(), poolSize 16', run: optimistic(pool16) },
    { group: AUTO_PIPELINING, name: 'GET, autoPipelining off', baseline: true, run: (i) => plain.get(`small:${i % SMALL_KEYS}`) },
    { group: AUTO_PIPELINING, name: 'GET, autoPipelining on', run: (i) => pipelined.get(`small:${i % SMALL_KEYS}`) },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), ...apps.map((app) => app.close())]);
    },
  };
}
