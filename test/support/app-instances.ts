import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll } from 'vitest';
import type { RedisPatternsModuleOptions } from '../../lib/index.js';
import { startContext } from './testing-app.js';
import { WorkerProcess } from './worker-process.js';

/**
 * Three app instances sharing a key prefix, for multi-instance suites: two in this process and
 * one in a child process running `workers/<worker>.js`, all with the module `options` given (as
 * JSON, for the child). Started before the suite's tests and stopped after them; read `.apps` and
 * `.worker` inside tests.
 */
export function appInstances(
  worker: string,
  connection: () => RedisPatternsModuleOptions['connection'],
  keyPrefix: string,
  options: Partial<RedisPatternsModuleOptions> = {},
): { readonly apps: INestApplicationContext[]; readonly worker: WorkerProcess } {
  const holder = {} as { apps: INestApplicationContext[]; worker: WorkerProcess };
  beforeAll(async () => {
    [holder.apps, holder.worker] = await Promise.all([
      Promise.all([1, 2].map(() => startContext({ ...options, connection: connection(), keyPrefix }))),
      WorkerProcess.start(worker, { connection: connection(), keyPrefix, options }),
    ]);
  });
  afterAll(async () => {
    holder.worker?.endInput();
    await holder.worker?.exited;
    await Promise.all((holder.apps ?? []).map((app) => app.close()));
  });
  return holder;
}
