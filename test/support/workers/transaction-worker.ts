import { serveCommands, startWorkerApp } from './worker-app.js';
import { TransactionService, type Transaction } from '../../../lib/index.js';

/**
 * An app instance making optimistic transfers in its own process, for multi-instance tests. Reads
 * one JSON command per line on stdin and answers one JSON line on stdout:
 * - {"op":"transfers","accounts":["{bank}:a0",...],"times":250} runs `times` random transfers at
 *   once between the accounts; answers how many committed, were aborted (insufficient funds), and
 *   took more than one attempt.
 */
const app = await startWorkerApp({ transaction: { poolSize: 8, acquireTimeout: '30s' } });
const transactions = app.get(TransactionService);

type Command = { id: number; op: 'transfers'; accounts: string[]; times: number };

/** Moves 1 to 20 from one account to another, unless the first has less. */
async function randomTransfer(service: TransactionService, accounts: readonly string[]) {
  const from = accounts[Math.floor(Math.random() * accounts.length)];
  const others = accounts.filter((account) => account !== from);
  const to = others[Math.floor(Math.random() * others.length)];
  const amount = 1 + Math.floor(Math.random() * 20);
  return service.optimistic(
    [from, to],
    async (tx: Transaction) => {
      const [balance] = (await tx.mget(from, to)).map(Number);
      if (balance < amount) tx.abort('insufficient funds');
      tx.incrby(from, -amount);
      tx.incrby(to, amount);
    },
    { maxAttempts: 1_000, backoff: { minDelay: '1ms', maxDelay: '20ms' } },
  );
}

async function run(command: Command): Promise<unknown> {
  const outcomes = await Promise.all(Array.from({ length: command.times }, () => randomTransfer(transactions, command.accounts)));
  return {
    committed: outcomes.filter((outcome) => outcome.committed).length,
    aborted: outcomes.filter((outcome) => !outcome.committed).length,
    retried: outcomes.filter((outcome) => outcome.attempts > 1).length,
  };
}

serveCommands(app, run);
