import { serveCommands, startWorkerApp } from './worker-app.js';
import { RateLimitService, type RateLimitPolicy } from '../../../lib/index.js';

/**
 * A rate-limited app instance in its own process, for multi-instance tests. Reads one JSON command
 * per line on stdin and answers one JSON line on stdout:
 * - {"op":"flood","key":"k","policy":{...},"count":300} sends `count` concurrent consumes and
 *   answers how many were allowed.
 */
const app = await startWorkerApp();
const limits = app.get(RateLimitService);

type Command = { id: number; op: 'flood'; key: string; policy: RateLimitPolicy; count: number };

async function run(command: Command): Promise<unknown> {
  const decisions = await Promise.all(Array.from({ length: command.count }, () => limits.consume(command.key, command.policy)));
  return decisions.filter((decision) => decision.allowed).length;
}

serveCommands(app, run);
