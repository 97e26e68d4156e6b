import { serveCommands, startWorkerApp } from './worker-app.js';
import { LockService, RedisConnections, type Duration } from '../../../lib/index.js';
import { runTasks, type TasksCommand } from './semaphore-tasks.js';

/**
 * A semaphore user in its own process, for multi-instance tests. Reads one JSON command per line
 * on stdin and answers one JSON line on stdout:
 * - {"op":"tasks","name":"s","permits":3,"tasks":100,"counter":"c"}: see runTasks; answers each task's permit.
 * - {"op":"hold","name":"s","permits":3,"ttl":"2s"}: takes one permit without renewing it, and
 *   keeps it (the test kills the process); answers its fencing token.
 */
const app = await startWorkerApp();
const locks = app.get(LockService);
const redis = app.get(RedisConnections).get();

type Command = { id: number } & (({ op: 'tasks' } & TasksCommand) | { op: 'hold'; name: string; permits: number; ttl: Duration });

async function run(command: Command): Promise<unknown> {
  if (command.op === 'tasks') return runTasks(locks, redis, command);
  const permit = await locks.semaphore(command.name, command.permits).acquire({ ttl: command.ttl });
  return permit.fencingToken;
}

serveCommands(app, run);
