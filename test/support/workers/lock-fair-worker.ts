import { serveCommands, startWorkerApp } from './worker-app.js';
import { LockService, REDIS_CLIENT } from '../../../lib/index.js';
import type { Redis } from 'ioredis';

/**
 * A fair lock waiter in its own process, for multi-instance tests (and to be killed with -9 while
 * it waits). Fair locks with a waiter lease of 1s, polled every 250ms. Reads one JSON command per
 * line on stdin and answers one JSON line on stdout:
 * - {"op":"wait","key":"k","label":"7","list":"l"} waits for the fair lock on `key` (up to 60s),
 *   then, holding it, appends `<label>:<fencing token>` to the Redis list `list`, and releases it;
 *   answers the fencing token.
 */
const FAIR_WORKER_OPTIONS = { lock: { fair: { waiterLease: '1s', poll: '250ms' } } } as const;

const app = await startWorkerApp(FAIR_WORKER_OPTIONS);
const locks = app.get(LockService);
const redis = app.get<Redis>(REDIS_CLIENT);

type Command = { id: number; op: 'wait'; key: string; label: string; list: string };

async function run(command: Command): Promise<number> {
  return locks.using(
    command.key,
    async (lock) => {
      await redis.rpush(command.list, `${command.label}:${lock.fencingToken}`);
      return lock.fencingToken;
    },
    { fair: true, wait: '60s' },
  );
}

serveCommands(app, run);
