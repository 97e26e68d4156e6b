import { serveCommands, startWorkerApp } from './worker-app.js';
import { RedisThrottlerStorage } from '../../../lib/index.js';

/**
 * An app instance counting @nestjs/throttler hits in its own process, for multi-instance tests.
 * Reads one JSON command per line on stdin and answers one JSON line on stdout:
 * - {"op":"flood","key":"k","ttl":60000,"limit":50,"blockDuration":0,"count":300} sends `count`
 *   concurrent increments and answers how many were not blocked.
 */
const app = await startWorkerApp();
const storage = app.get(RedisThrottlerStorage);

type Command = { id: number; op: 'flood'; key: string; ttl: number; limit: number; blockDuration: number; count: number };

async function run({ key, ttl, limit, blockDuration, count }: Command): Promise<unknown> {
  const answers = await Promise.all(Array.from({ length: count }, () => storage.increment(key, ttl, limit, blockDuration, 'flood')));
  return answers.filter((answer) => !answer.isBlocked).length;
}

serveCommands(app, run);
