import type { LockService, RedisClient } from '../../../lib/index.js';

/** One task's permit: its fencing token, and how many tasks held one when it counted itself in (itself included). */
export interface PermitRun {
  token: number;
  inside: number;
}

/** A run of tasks: `tasks` of them, each holding one permit of the semaphore `name` (of `permits`), counted in the Redis key `counter`. */
export interface TasksCommand {
  name: string;
  permits: number;
  tasks: number;
  counter: string;
}

/**
 * Runs the tasks at once, each under a permit: it counts itself in (INCR of `counter`, whose
 * answer is how many tasks of every instance hold a permit then), works a few milliseconds, and
 * counts itself out (DECR) before giving the permit back. The counter is raised after the grant
 * and lowered before the release, so it never exceeds the true number of holders. Answers each
 * task's permit in the order they were granted on this instance.
 */
export async function runTasks(locks: LockService, redis: RedisClient, command: TasksCommand): Promise<PermitRun[]> {
  const semaphore = locks.semaphore(command.name, command.permits);
  const runs: PermitRun[] = [];
  await Promise.all(
    Array.from({ length: command.tasks }, () =>
      semaphore.using(
        async (permit) => {
          const run = { token: permit.fencingToken, inside: 0 };
          runs.push(run);
          run.inside = await redis.incr(command.counter);
          await new Promise((resolve) => setTimeout(resolve, 3));
          await redis.decr(command.counter);
        },
        { wait: '60s', ttl: '5s' },
      ),
    ),
  );
  return runs;
}
