import { serveCommands, startWorkerApp } from './worker-app.js';
import { LockService, REDIS_CLIENT } from '../../../lib/index.js';
import type { Redis } from 'ioredis';

/**
 * A lock user in its own process, for multi-instance tests. Reads one JSON command per line on
 * stdin and answers one JSON line on stdout:
 * - {"op":"increment","lock":"k","counter":"c","times":20} increments the Redis key `counter`
 *   `times` times with a non-atomic GET, pause, SET, each under the lock; answers the fencing tokens.
 */
const app = await startWorkerApp();
const locks = app.get(LockService);
const redis = app.get<Redis>(REDIS_CLIENT);

type Command = { id: number; op: 'increment'; lock: string; counter: string; times: number };

async function run(command: Command): Promise<unknown> {
  return Promise.all(
    Array.from({ length: command.times }, () =>
      locks.using(
        command.lock,
        async (lock) => {
          const value = Number((await redis.get(command.counter)) ?? 0);
          await new Promise((resolve) => setTimeout(resolve, 2));
          await redis.set(command.counter, String(value + 1));
          return lock.fencingToken;
        },
        { wait: '30s', ttl: '5s' },
      ),
    ),
  );
}

serveCommands(app, run);
